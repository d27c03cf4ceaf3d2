; CATALOGUE: Orc/comdat-any.ll
; KINDS: mcjit default
; EXIT: 0
;
; A function in an "any" comdat (as C++ inline functions are emitted) is
; called from main; it returns 6 and main returns that minus 6.

$inline_fn = comdat any

define linkonce_odr i32 @inline_fn() comdat {
entry:
  ret i32 6
}

define i32 @main(i32 %argc, ptr %argv) {
entry:
  %r = call i32 @inline_fn()
  %status = sub i32 %r, 6
  ret i32 %status
}
