; CATALOGUE: MCJIT/remote/simpletest-remote.ll
; KINDS: mcjit remote
; EXIT: 0
;
; Executed in a separate process: main calls one function, which returns 0
; for the argument it is given.

define i32 @check(i32 %x) {
entry:
  %r = xor i32 %x, 1234
  ret i32 %r
}

define i32 @main() {
entry:
  %r = call i32 @check(i32 1234)
  ret i32 %r
}
