; Extra module for weak-function.ll: a second weak definition of @shared and
; a function that returns the address this module sees for it.

define weak i32 @shared() {
entry:
  ret i32 0
}

define ptr @shared_address_in_extra_module() {
entry:
  ret ptr @shared
}
