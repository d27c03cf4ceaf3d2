; CATALOGUE: MCJIT/remote/multi-module-a.ll
; KINDS: mcjit remote
; EXTRA: multi-module-b.ll multi-module-c.ll
; EXIT: 0
;
; The three-module call chain executed in a separate process: main calls
; @middle in multi-module-b.ll, which calls @last in multi-module-c.ll; the
; chain returns 0.  Each hop adjusts a value, so a misrouted call shows up.

declare i32 @middle(i32)

define i32 @main() {
entry:
  %r = call i32 @middle(i32 10)
  ret i32 %r
}
