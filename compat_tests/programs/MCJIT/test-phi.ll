; CATALOGUE: MCJIT/test-phi.ll
; KINDS: mcjit default
; EXIT: 0
;
; Phi nodes with an unreachable predecessor and with duplicated incoming edges
; (a conditional branch and a switch whose targets coincide) must compile;
; the values that flow along the reachable edges give status 0.

@selector = global i32 2, align 4

define i32 @main() {
entry:
  %sel = load volatile i32, ptr @selector
  %c = icmp sgt i32 %sel, 0
  br i1 %c, label %join, label %join

dead:                                   ; no predecessors
  %junk = add i32 %sel, 40
  br label %join

join:
  %a = phi i32 [ 0, %entry ], [ 0, %entry ], [ %junk, %dead ]
  switch i32 %sel, label %merge [
    i32 1, label %merge
    i32 2, label %merge
    i32 3, label %other
  ]

other:
  br label %merge

dead2:                                  ; no predecessors either
  br label %loop

merge:
  %b = phi i32 [ %a, %join ], [ %a, %join ], [ %a, %join ], [ 99, %other ]
  br label %loop

loop:
  %i = phi i32 [ 0, %merge ], [ %i.next, %loop ], [ 7, %dead2 ]
  %carried = phi i32 [ %b, %merge ], [ %carried, %loop ], [ 5, %dead2 ]
  %i.next = add i32 %i, 1
  %again = icmp slt i32 %i.next, 3
  br i1 %again, label %loop, label %exit

exit:
  %over = sub i32 %i.next, 3
  %status = add i32 %over, %carried
  ret i32 %status
}
