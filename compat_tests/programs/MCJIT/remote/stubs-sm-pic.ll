; CATALOGUE: MCJIT/remote/stubs-sm-pic.ll
; KINDS: mcjit lazy remote
; OPTIONS: --relocation-model pic --code-model small
; EXIT: 0
;
; The address of @self_address is stored in a global before the function
; has ever been called or compiled.  Once compiled, the function returns the
; address it sees for itself; both must be equal (and equal to the address
; main sees), otherwise a message is printed and the exit status is 1.
; Executed in a separate process, compiled as PIC with the small code model.

@.msg = private constant [47 x i8] c"stubs: function address mismatch (stub leaked)\00"

; Statically initialised with @self_address's address, before any call.
@stored = global ptr @self_address, align 8

declare i32 @puts(ptr)

; Returns the address this function sees for itself once compiled.
define ptr @self_address() {
entry:
  ret ptr @self_address
}

define i32 @main() {
entry:
  %before = load ptr, ptr @stored, align 8
  %seen = call ptr @self_address()
  %via.stored = call ptr %before()
  %same1 = icmp eq ptr %before, %seen
  %same2 = icmp eq ptr %seen, %via.stored
  %same3 = icmp eq ptr %seen, @self_address
  %ok12 = and i1 %same1, %same2
  %ok = and i1 %ok12, %same3
  br i1 %ok, label %pass, label %fail

pass:
  ret i32 0

fail:
  call i32 @puts(ptr @.msg)
  ret i32 1
}
