; CATALOGUE: MCJIT/test-global-init-nonzero-sm-pic.ll
; KINDS: mcjit default
; OPTIONS: --relocation-model pic --code-model small
; EXIT: 0
;
; The nonzero-initialised global counter (starts at 1, incremented 49 times,
; status counter - 50) compiled as PIC with the small code model, so the
; global is reached through PC-relative / GOT relocations.

@counter = global i32 1, align 4

define i32 @main() {
entry:
  br label %loop

loop:
  %i = phi i32 [ 0, %entry ], [ %next, %loop ]
  %c = load i32, ptr @counter, align 4
  %c1 = add i32 %c, 1
  store i32 %c1, ptr @counter, align 4
  %next = add i32 %i, 1
  %more = icmp ne i32 %next, 49
  br i1 %more, label %loop, label %done

done:
  %final = load i32, ptr @counter, align 4
  %status = sub i32 %final, 50
  ret i32 %status
}
