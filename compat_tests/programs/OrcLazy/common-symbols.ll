; CATALOGUE: OrcLazy/common-symbols.ll
; KINDS: lazy
; EXIT: 0
; STDOUT: 7
;
; A value (7) is stored into a common global and printed from it.

@value = common global i32 0, align 4

@.fmt = private constant [4 x i8] c"%d\0A\00"

declare i32 @printf(ptr, ...)

define i32 @main(i32 %argc, ptr %argv) {
entry:
  store i32 7, ptr @value, align 4
  %v = load volatile i32, ptr @value, align 4
  call i32 (ptr, ...) @printf(ptr @.fmt, i32 %v)
  ret i32 0
}
