; Extra module for weak-function.ll: a second linkonce_odr definition of
; @shared and a function that returns the address this module sees for it.

define linkonce_odr i32 @shared() {
entry:
  ret i32 0
}

define ptr @shared_address_in_extra_module() {
entry:
  ret ptr @shared
}
