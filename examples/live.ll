; Live coding demo. Run it with
;   python -m execution_engine run examples/live.ll --watch -- 600
; and, while it runs, edit @compute below (say, change "mul i64 %i, 2" to
; "mul i64 %i, 3") and save: the next lines printed use the new code. The
; counter in @ticks keeps counting across edits; a syntax error is reported
; and the previous code keeps running. The argument is how many lines to
; print (one every 100 ms).

@ticks = internal global i64 0
@fmt = private unnamed_addr constant [27 x i8] c"tick %lld: compute = %lld\0A\00"

declare i32 @printf(ptr, ...)
declare i32 @fflush(ptr)
declare i32 @usleep(i32)
declare i64 @atol(ptr)

define i64 @compute(i64 %i) {
  %r = mul i64 %i, 2
  ret i64 %r
}

define i32 @main(i32 %argc, ptr %argv) {
entry:
  %has_arg = icmp sgt i32 %argc, 1
  br i1 %has_arg, label %parse, label %loop
parse:
  %slot = getelementptr ptr, ptr %argv, i64 1
  %arg = load ptr, ptr %slot
  %n.arg = call i64 @atol(ptr %arg)
  br label %loop
loop:
  %n = phi i64 [ 600, %entry ], [ %n.arg, %parse ], [ %n, %loop ]
  %t = load i64, ptr @ticks
  %t1 = add i64 %t, 1
  store i64 %t1, ptr @ticks
  %v = call i64 @compute(i64 %t1)
  call i32 (ptr, ...) @printf(ptr @fmt, i64 %t1, i64 %v)
  call i32 @fflush(ptr null)
  call i32 @usleep(i32 100000)
  %more = icmp slt i64 %t1, %n
  br i1 %more, label %loop, label %done
done:
  ret i32 0
}
