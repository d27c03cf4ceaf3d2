; CATALOGUE: MCJIT/2003-10-18-PHINode-ConstantExpr-CondCode-Failure.ll
; KINDS: mcjit default
; EXIT: 0
;
; A phi node takes a constant expression computed from a global's address
; (ptrtoint, and an offset from it).  The comparisons made on the phi value
; must pick the branch that returns 0; the wrong one returns 12.

@target = global i32 5, align 4
@selector = global i32 1, align 4

define i32 @main() {
entry:
  %sel = load volatile i32, ptr @selector
  %nz = icmp ne i32 %sel, 0
  br i1 %nz, label %from.global, label %from.zero

from.global:
  br label %join

from.zero:
  br label %join

join:
  %addr = phi i64 [ ptrtoint (ptr @target to i64), %from.global ], [ 0, %from.zero ]
  %plus4 = phi i64 [ add (i64 ptrtoint (ptr @target to i64), i64 4), %from.global ], [ 4, %from.zero ]
  %nonnull = icmp ne i64 %addr, 0
  br i1 %nonnull, label %check.offset, label %wrong

check.offset:
  %runtime = ptrtoint ptr @target to i64
  %same = icmp eq i64 %addr, %runtime
  %diff = sub i64 %plus4, %addr
  %four = icmp eq i64 %diff, 4
  %ok = and i1 %same, %four
  br i1 %ok, label %right, label %wrong

right:
  ret i32 0

wrong:
  ret i32 12
}
