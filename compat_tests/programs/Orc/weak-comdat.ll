; CATALOGUE: Orc/weak-comdat.ll
; KINDS: default
; EXTRA: weak-comdat-extra.ll
; EXIT: 0
;
; A weak function @in_group, in a "nodeduplicate" comdat, calls @helper,
; which is defined in weak-comdat-extra.ll; that module carries its own copy
; of the same comdat and weak function.  Loading both must not fail and main
; returns @helper's result through @in_group (0).

$group = comdat nodeduplicate

define weak i32 @in_group() comdat($group) {
entry:
  %r = call i32 @helper(i32 9)
  ret i32 %r
}

declare i32 @helper(i32)

define i32 @main(i32 %argc, ptr %argv) {
entry:
  %r = call i32 @in_group()
  ret i32 %r
}
