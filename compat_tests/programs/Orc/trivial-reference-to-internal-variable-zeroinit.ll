; CATALOGUE: Orc/trivial-reference-to-internal-variable-zeroinit.ll
; KINDS: default
; EXIT: 0
;
; An internal zero-initialised global (a zero-fill section); the exit status
; is its value, so memory that was not zero-filled shows up.

@value = internal global i32 0, align 4

define i32 @main(i32 %argc, ptr %argv) {
entry:
  %v = load volatile i32, ptr @value, align 4
  ret i32 %v
}
