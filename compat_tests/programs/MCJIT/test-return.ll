; CATALOGUE: MCJIT/test-return.ll
; KINDS: mcjit default
; EXIT: 0
;
; The smallest program: main writes a stack slot, reads it back and returns it.

define i32 @main() {
entry:
  %slot = alloca i32, align 4
  store volatile i32 0, ptr %slot
  %v = load volatile i32, ptr %slot
  ret i32 %v
}
