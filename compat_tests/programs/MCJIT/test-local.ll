; CATALOGUE: MCJIT/test-local.ll
; KINDS: mcjit default
; EXIT: 0
;
; The 50-iteration counting loop on a stack variable; status counter - 50.

define i32 @main() {
entry:
  %counter = alloca i32, align 4
  store i32 0, ptr %counter, align 4
  br label %loop

loop:
  %i = phi i32 [ 0, %entry ], [ %next, %loop ]
  %c = load i32, ptr %counter, align 4
  %c1 = add i32 %c, 1
  store i32 %c1, ptr %counter, align 4
  %next = add i32 %i, 1
  %more = icmp ne i32 %next, 50
  br i1 %more, label %loop, label %done

done:
  %final = load i32, ptr %counter, align 4
  %status = sub i32 %final, 50
  ret i32 %status
}
