; CATALOGUE: Orc/trivial-reference-to-global-variable.ll
; KINDS: default
; EXIT: 0
;
; An external global initialised to 1 must read as 1 (data section or GOT
; handling); status is its value minus 1.

@value = global i32 1, align 4

define i32 @main(i32 %argc, ptr %argv) {
entry:
  %v = load i32, ptr @value, align 4
  %status = sub i32 %v, 1
  ret i32 %status
}
