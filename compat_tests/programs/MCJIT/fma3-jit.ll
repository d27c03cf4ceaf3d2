; CATALOGUE: MCJIT/fma3-jit.ll
; KINDS: mcjit default
; EXIT: 0
; STDOUT: 12.000000
;
; Fused multiply-add 3*3+3 through llvm.fma.f64 on operands loaded at run
; time, printed with six decimals.  Compiled for the host CPU this is a
; vfmadd instruction when the CPU has FMA (otherwise a call to fma).

@three = global double 3.000000e+00, align 8

@.fmt = private constant [4 x i8] c"%f\0A\00"

declare i32 @printf(ptr, ...)
declare double @llvm.fma.f64(double, double, double)

define i32 @main() {
entry:
  %a = load volatile double, ptr @three, align 8
  %b = load volatile double, ptr @three, align 8
  %c = load volatile double, ptr @three, align 8
  %r = call double @llvm.fma.f64(double %a, double %b, double %c)
  call i32 (ptr, ...) @printf(ptr @.fmt, double %r)
  ret i32 0
}
