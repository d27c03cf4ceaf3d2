; CATALOGUE: MCJIT/fpbitcast.ll
; KINDS: mcjit
; EXIT: 0
; STDOUT: 40091EB8
;
; The bits of the double 3.14 (0x40091EB851EB851F) are reinterpreted as an
; i64 and the high 32 bits printed in upper-case hex.

@value = global double 0x40091EB851EB851F, align 8

@.fmt = private constant [4 x i8] c"%X\0A\00"

declare i32 @printf(ptr, ...)

define i32 @high_word(double %d) {
entry:
  %bits = bitcast double %d to i64
  %hi = lshr i64 %bits, 32
  %r = trunc i64 %hi to i32
  ret i32 %r
}

define i32 @main() {
entry:
  %d = load volatile double, ptr @value, align 8
  %hi = call i32 @high_word(double %d)
  call i32 (ptr, ...) @printf(ptr @.fmt, i32 %hi)
  ret i32 0
}
