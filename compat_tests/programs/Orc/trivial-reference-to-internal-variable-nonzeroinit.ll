; CATALOGUE: Orc/trivial-reference-to-internal-variable-nonzeroinit.ll
; KINDS: default
; EXIT: 0
;
; An internal global initialised to 1 must read as 1; status is its value
; minus 1.

@value = internal global i32 1, align 4

define i32 @main(i32 %argc, ptr %argv) {
entry:
  %v = load volatile i32, ptr @value, align 4
  %status = sub i32 %v, 1
  ret i32 %status
}
