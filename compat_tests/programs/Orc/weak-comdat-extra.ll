; Extra module for weak-comdat.ll: its own copy of the "nodeduplicate" comdat
; with a weak @in_group, plus @helper, which returns 0 when given 9.

$group = comdat nodeduplicate

define weak i32 @in_group() comdat($group) {
entry:
  %r = call i32 @helper(i32 9)
  ret i32 %r
}

define i32 @helper(i32 %x) {
entry:
  %r = sub i32 %x, 9
  ret i32 %r
}
