; A small C-like program: greets, prints its arguments and sums 1..10 with a
; static constructor setting the starting value. Run it with
;   python -m execution_engine run examples/hello.ll -- one two
; It exits with status 0 when the sum is right.

@greeting = private unnamed_addr constant [28 x i8] c"hello from execution_engine\00"
@fmt_arg = private unnamed_addr constant [15 x i8] c"argv[%d] = %s\0A\00"
@fmt_sum = private unnamed_addr constant [17 x i8] c"sum(1..10) = %d\0A\00"
@start = internal global i32 -1

@llvm.global_ctors = appending global [1 x { i32, ptr, ptr }] [{ i32, ptr, ptr } { i32 65535, ptr @init, ptr null }]

declare i32 @puts(ptr)
declare i32 @printf(ptr, ...)

define internal void @init() {
  store i32 0, ptr @start
  ret void
}

define i32 @sum_to(i32 %n) {
entry:
  %s0 = load i32, ptr @start
  br label %loop
loop:
  %i = phi i32 [ 1, %entry ], [ %i.next, %loop ]
  %s = phi i32 [ %s0, %entry ], [ %s.next, %loop ]
  %s.next = add i32 %s, %i
  %i.next = add i32 %i, 1
  %done = icmp sgt i32 %i.next, %n
  br i1 %done, label %exit, label %loop
exit:
  ret i32 %s.next
}

define i32 @main(i32 %argc, ptr %argv) {
entry:
  call i32 @puts(ptr @greeting)
  br label %args
args:
  %i = phi i32 [ 0, %entry ], [ %i.next, %args ]
  %slot = getelementptr ptr, ptr %argv, i32 %i
  %arg = load ptr, ptr %slot
  call i32 (ptr, ...) @printf(ptr @fmt_arg, i32 %i, ptr %arg)
  %i.next = add i32 %i, 1
  %more = icmp slt i32 %i.next, %argc
  br i1 %more, label %args, label %sum
sum:
  %total = call i32 @sum_to(i32 10)
  call i32 (ptr, ...) @printf(ptr @fmt_sum, i32 %total)
  %ok = icmp eq i32 %total, 55
  %status = select i1 %ok, i32 0, i32 1
  ret i32 %status
}
