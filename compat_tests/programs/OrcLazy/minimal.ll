; CATALOGUE: OrcLazy/minimal.ll
; KINDS: lazy
; EXIT: 0
;
; A do-nothing main run under the lazy kind.

define i32 @main(i32 %argc, ptr %argv) {
entry:
  ret i32 0
}
