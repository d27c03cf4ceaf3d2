; CATALOGUE: MCJIT/frem.ll
; KINDS: mcjit default
; EXIT: 0
; STDOUT: Double value: 2.0
;
; Single-precision remainder of 12 by 5 (operands loaded at run time, so the
; frem is really executed and may become a call to fmodf), widened to double
; and printed with one decimal.

@dividend = global float 1.200000e+01, align 4
@divisor = global float 5.000000e+00, align 4

@.fmt = private constant [20 x i8] c"Double value: %.1f\0A\00"

declare i32 @printf(ptr, ...)

define i32 @main() {
entry:
  %a = load volatile float, ptr @dividend, align 4
  %b = load volatile float, ptr @divisor, align 4
  %r = frem float %a, %b
  %wide = fpext float %r to double
  call i32 (ptr, ...) @printf(ptr @.fmt, double %wide)
  ret i32 0
}
