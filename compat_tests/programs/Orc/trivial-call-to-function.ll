; CATALOGUE: Orc/trivial-call-to-function.ll
; KINDS: default
; EXIT: 0
;
; main calls an externally visible function (a call relocation that may go
; through a PLT/GOT entry); the callee returns 0.

define i32 @callee() {
entry:
  ret i32 0
}

define i32 @main(i32 %argc, ptr %argv) {
entry:
  %r = call i32 @callee()
  ret i32 %r
}
