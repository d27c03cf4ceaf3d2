; CATALOGUE: MCJIT/test-global.ll
; KINDS: mcjit default
; EXIT: 0
;
; A zero-initialised global counter is incremented 50 times in a loop; the
; exit status is counter - 50.

@counter = global i32 0, align 4

define i32 @main() {
entry:
  br label %loop

loop:
  %i = phi i32 [ 0, %entry ], [ %next, %loop ]
  %c = load i32, ptr @counter, align 4
  %c1 = add i32 %c, 1
  store i32 %c1, ptr @counter, align 4
  %next = add i32 %i, 1
  %more = icmp ne i32 %next, 50
  br i1 %more, label %loop, label %done

done:
  %final = load i32, ptr @counter, align 4
  %status = sub i32 %final, 50
  ret i32 %status
}
