; Extra module for multi-module-sm-pic-a.ll: the end of the call chain,
; returns 0 when given 7.

define i32 @last(i32 %x) {
entry:
  %r = sub i32 %x, 7
  ret i32 %r
}
