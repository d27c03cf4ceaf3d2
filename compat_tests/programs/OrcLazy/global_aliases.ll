; CATALOGUE: OrcLazy/global_aliases.ll
; KINDS: lazy
; EXIT: 0
;
; An alias of a global variable and an alias of a function.  main calls
; through the function alias; the function reads the variable through its
; alias (42).  Status is that value minus 42.

@answer = global i32 42, align 4
@answer.alias = alias i32, ptr @answer

define i32 @read_answer() {
entry:
  %v = load i32, ptr @answer.alias, align 4
  ret i32 %v
}

@read_answer.alias = alias i32 (), ptr @read_answer

define i32 @main(i32 %argc, ptr %argv) {
entry:
  %v = call i32 @read_answer.alias()
  %status = sub i32 %v, 42
  ret i32 %status
}
