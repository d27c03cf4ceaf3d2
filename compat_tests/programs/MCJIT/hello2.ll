; CATALOGUE: MCJIT/hello2.ll
; KINDS: mcjit default
; EXIT: 0
;
; A helper calls printf, declared here with a void result, on an internal
; string; main returns 0 after it.

@message = internal constant [14 x i8] c"hello, again\0A\00"

declare void @printf(ptr, ...)

define void @say_hello() {
entry:
  call void (ptr, ...) @printf(ptr @message)
  ret void
}

define i32 @main() {
entry:
  call void @say_hello()
  ret i32 0
}
