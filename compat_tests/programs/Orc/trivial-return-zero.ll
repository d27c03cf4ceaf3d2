; CATALOGUE: Orc/trivial-return-zero.ll
; KINDS: default
; EXIT: 0
;
; Smoke test: main only returns 0.  If JIT memory cannot be made executable
; the very first call into it faults.

define i32 @main(i32 %argc, ptr %argv) {
entry:
  ret i32 0
}
