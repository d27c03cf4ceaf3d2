; CATALOGUE: MCJIT/test-call-no-external-funcs.ll
; KINDS: mcjit default
; EXIT: 0
;
; main calls a JIT-compiled function with a C++-mangled name (sum(int, int))
; and returns its result; no symbol from outside the module is used.

define i32 @_Z3sumii(i32 %a, i32 %b) {
entry:
  %r = add i32 %a, %b
  ret i32 %r
}

define i32 @main() {
entry:
  %r = call i32 @_Z3sumii(i32 19, i32 -19)
  ret i32 %r
}
