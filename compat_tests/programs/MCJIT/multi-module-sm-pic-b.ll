; Extra module for multi-module-sm-pic-a.ll: the middle of the call chain.

declare i32 @last(i32)

define i32 @middle(i32 %x) {
entry:
  %y = add i32 %x, 4
  %r = call i32 @last(i32 %y)
  ret i32 %r
}
