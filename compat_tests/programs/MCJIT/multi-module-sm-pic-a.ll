; CATALOGUE: MCJIT/multi-module-sm-pic-a.ll
; KINDS: mcjit default
; OPTIONS: --relocation-model pic --code-model small
; EXTRA: multi-module-sm-pic-b.ll multi-module-sm-pic-c.ll
; EXIT: 0
;
; Three modules compiled as PIC with the small code model: main calls
; @middle in multi-module-sm-pic-b.ll, which calls @last in
; multi-module-sm-pic-c.ll; the chain returns 0.  Each hop passes and
; adjusts a value, so a call that lands in the wrong place shows up.

declare i32 @middle(i32)

define i32 @main() {
entry:
  %r = call i32 @middle(i32 3)
  ret i32 %r
}
