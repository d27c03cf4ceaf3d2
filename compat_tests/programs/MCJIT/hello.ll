; CATALOGUE: MCJIT/hello.ll
; KINDS: mcjit default
; EXIT: 0
;
; Prints a fixed string held in an internal global with puts (the output is
; not compared); status 1 if puts reports an error.

@greeting = internal constant [15 x i8] c"hello, MCJIT!\0A\00"

declare i32 @puts(ptr)

define i32 @main() {
entry:
  %r = call i32 @puts(ptr @greeting)
  %err = icmp slt i32 %r, 0
  %status = zext i1 %err to i32
  ret i32 %status
}
