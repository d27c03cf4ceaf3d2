; CATALOGUE: OrcLazy/single-function-call.ll
; KINDS: lazy
; EXIT: 0
;
; main calls one other function, which under the lazy kind is reached through
; a lazy-compilation stub.  The callee returns 42; main returns that minus 42,
; so a stub that lands anywhere else gives a non-zero status or a crash.

define i32 @answer() {
entry:
  ret i32 42
}

define i32 @main(i32 %argc, ptr %argv) {
entry:
  %r = call i32 @answer()
  %status = sub i32 %r, 42
  ret i32 %status
}
