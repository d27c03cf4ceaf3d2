; CATALOGUE: MCJIT/remote/test-fp-no-external-funcs-remote.ll
; KINDS: mcjit remote
; EXIT: 0
;
; Executed in a separate process: double add, subtract, multiply and divide
; (no library calls) whose intermediate results become NaN must run without
; traps; the final value is written through a pointer.  Status 1 if the
; returned or the stored value is not NaN.

; Runs the arithmetic chain on *%slot and %arg, writes the final value back
; through %slot and returns the NaN intermediate.
define double @chain(ptr %slot, double %arg) {
entry:
  %d = load double, ptr %slot, align 8
  %sum = fadd double %d, %arg            ; 1 + 2 = 3
  %zero = fsub double %sum, %sum         ; 0
  %sq = fmul double %zero, %zero         ; 0
  %nan = fdiv double %sq, %sq            ; 0/0 = NaN
  %inf = fdiv double %sum, %zero         ; 3/0 = +inf
  %nan2 = fmul double %inf, %zero        ; inf*0 = NaN
  %mix = fsub double %nan, %nan2
  %out = fadd double %mix, %arg
  store double %out, ptr %slot, align 8
  ret double %mix
}

define i32 @main() {
entry:
  %slot = alloca double, align 8
  store double 1.000000e+00, ptr %slot, align 8
  %r = call double @chain(ptr %slot, double 2.000000e+00)
  %stored = load double, ptr %slot, align 8
  %r.nan = fcmp uno double %r, %r
  %s.nan = fcmp uno double %stored, %stored
  %ok = and i1 %r.nan, %s.nan
  %status = select i1 %ok, i32 0, i32 1
  ret i32 %status
}
