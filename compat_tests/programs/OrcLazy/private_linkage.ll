; CATALOGUE: OrcLazy/private_linkage.ll
; KINDS: lazy
; EXIT: 0
;
; A private function and an external function whose name begins with the
; "do not mangle" marker byte \01 are both called from main.  They return 5
; and 6; status is their sum minus 11.

define private i32 @private_helper() {
entry:
  ret i32 5
}

define i32 @"\01raw_external"() {
entry:
  ret i32 6
}

define i32 @main(i32 %argc, ptr %argv) {
entry:
  %a = call i32 @private_helper()
  %b = call i32 @"\01raw_external"()
  %sum = add i32 %a, %b
  %status = sub i32 %sum, 11
  ret i32 %status
}
