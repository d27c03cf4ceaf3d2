; CATALOGUE: MCJIT/2013-04-04-RelocAddend.ll
; KINDS: mcjit default
; EXIT: 0
;
; A global pointer is statically initialised to the second element of a
; global array, i.e. a data relocation with a non-zero addend.  Reading
; through it must give 0; a dropped addend gives the first element, -1
; (status 255).

@values = global [2 x i32] [i32 -1, i32 0], align 4
@second = global ptr getelementptr inbounds ([2 x i32], ptr @values, i64 0, i64 1), align 8

define i32 @main() {
entry:
  %p = load ptr, ptr @second, align 8
  %v = load i32, ptr %p, align 4
  ret i32 %v
}
