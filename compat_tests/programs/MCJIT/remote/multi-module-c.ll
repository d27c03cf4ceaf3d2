; Extra module for multi-module-a.ll: the end of the call chain, returns 0
; when given 20.

define i32 @last(i32 %x) {
entry:
  %r = sub i32 %x, 20
  ret i32 %r
}
