; CATALOGUE: MCJIT/test-call.ll
; KINDS: mcjit default
; EXIT: 0
;
; The C library's exit is passed as a function pointer to a helper that calls
; it with a computed value (5 - 5 = 0).  The process must end inside that
; call: falling through to main's own return gives status 1.

declare void @exit(i32)

define void @call_with_difference(ptr %fn, i32 %a, i32 %b) {
entry:
  %v = sub i32 %a, %b
  call void %fn(i32 %v)
  ret void
}

define i32 @main() {
entry:
  call void @call_with_difference(ptr @exit, i32 5, i32 5)
  ret i32 1
}
