; CATALOGUE: MCJIT/weak-function.ll
; KINDS: mcjit default
; EXTRA: weak-function-extra.ll
; EXIT: 0
;
; A weak function @shared is defined both here and in weak-function-extra.ll.
; Each module hands out the address it sees for @shared; one definition must
; win for both, so the addresses must be equal (status 1 otherwise).  Calling
; through that address must also work (status 2 otherwise).

define weak i32 @shared() {
entry:
  ret i32 0
}

define ptr @shared_address_in_main_module() {
entry:
  ret ptr @shared
}

declare ptr @shared_address_in_extra_module()

define i32 @main() {
entry:
  %a = call ptr @shared_address_in_main_module()
  %b = call ptr @shared_address_in_extra_module()
  %same = icmp eq ptr %a, %b
  br i1 %same, label %call, label %differ

call:
  %r = call i32 %a()
  %ok = icmp eq i32 %r, 0
  %status = select i1 %ok, i32 0, i32 2
  ret i32 %status

differ:
  ret i32 1
}
