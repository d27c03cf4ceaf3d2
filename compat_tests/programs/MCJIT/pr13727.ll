; CATALOGUE: MCJIT/pr13727.ll
; KINDS: mcjit lazy
; OPTIONS: --opt 0
; EXIT: 0
;
; Regression program for a common-symbol bug: the same three common globals
; (int counter, double average, int array) start at zero, the array is filled
; with 2, 4, ..., 20 and summed; the sum must reach 110, the counter 10, and
; the average (11.0) must lie below the threshold 11.5.  Failure returns -1
; (status 255).

@count = common global i32 0, align 4
@average = common global double 0.000000e+00, align 8
@table = common global [10 x i32] zeroinitializer, align 16

define i32 @main() {
entry:
  ; All three common symbols must start out as zero.
  %c0 = load i32, ptr @count, align 4
  %a0 = load double, ptr @average, align 8
  %t0 = load i32, ptr @table, align 16
  %z.c = icmp eq i32 %c0, 0
  %z.a = fcmp oeq double %a0, 0.000000e+00
  %z.t = icmp eq i32 %t0, 0
  %z.ca = and i1 %z.c, %z.a
  %zero = and i1 %z.ca, %z.t
  br i1 %zero, label %fill, label %fail

fill:
  %i = phi i32 [ 0, %entry ], [ %i.next, %fill ]
  %i64 = sext i32 %i to i64
  %slot = getelementptr inbounds [10 x i32], ptr @table, i64 0, i64 %i64
  %i1 = add i32 %i, 1
  %v = shl i32 %i1, 1                   ; 2, 4, ..., 20
  store i32 %v, ptr %slot, align 4
  %i.next = add i32 %i, 1
  %more = icmp slt i32 %i.next, 10
  br i1 %more, label %fill, label %sum.start

sum.start:
  br label %sum

sum:
  %j = phi i32 [ 0, %sum.start ], [ %j.next, %sum ]
  %acc = phi i32 [ 0, %sum.start ], [ %acc.next, %sum ]
  %j64 = sext i32 %j to i64
  %jslot = getelementptr inbounds [10 x i32], ptr @table, i64 0, i64 %j64
  %x = load i32, ptr %jslot, align 4
  %acc.next = add i32 %acc, %x
  %n = load i32, ptr @count, align 4
  %n1 = add i32 %n, 1
  store i32 %n1, ptr @count, align 4
  %accf = sitofp i32 %acc.next to double
  %n1f = sitofp i32 %n1 to double
  %avg = fdiv double %accf, %n1f
  store double %avg, ptr @average, align 8
  %j.next = add i32 %j, 1
  %more.sum = icmp slt i32 %j.next, 10
  br i1 %more.sum, label %sum, label %check

check:
  %total.ok = icmp eq i32 %acc.next, 110
  %final.count = load i32, ptr @count, align 4
  %count.ok = icmp eq i32 %final.count, 10
  %final.avg = load double, ptr @average, align 8
  %avg.ok = fcmp olt double %final.avg, 1.150000e+01
  %ok1 = and i1 %total.ok, %count.ok
  %ok = and i1 %ok1, %avg.ok
  br i1 %ok, label %pass, label %fail

pass:
  ret i32 0

fail:
  ret i32 -1
}
