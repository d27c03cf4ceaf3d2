; CATALOGUE: Orc/trivial-call-to-internal-function.ll
; KINDS: default
; EXIT: 0
;
; main calls an internal-linkage function that returns 0.

define internal i32 @callee() {
entry:
  ret i32 0
}

define i32 @main(i32 %argc, ptr %argv) {
entry:
  %r = call i32 @callee()
  ret i32 %r
}
