; CATALOGUE: OrcLazy/anonymous_globals.ll
; KINDS: lazy
; EXIT: 0
;
; Two private functions, one unnamed (@0) and one whose name starts with the
; "do not mangle" marker byte \01, are both called from main.  They return 3
; and 4; status is their sum minus 7.

define private i32 @0() {
entry:
  ret i32 3
}

define private i32 @"\01raw_private"() {
entry:
  ret i32 4
}

define i32 @main(i32 %argc, ptr %argv) {
entry:
  %a = call i32 @0()
  %b = call i32 @"\01raw_private"()
  %sum = add i32 %a, %b
  %status = sub i32 %sum, 7
  ret i32 %status
}
