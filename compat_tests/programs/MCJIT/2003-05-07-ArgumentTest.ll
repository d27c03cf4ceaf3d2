; CATALOGUE: MCJIT/2003-05-07-ArgumentTest.ll
; KINDS: mcjit default
; ARGS: hello
; EXIT: 0
;
; One program argument ("hello") follows the file name.  main prints argv[1]
; and checks that it really is that argument: status 1 if argc is not 2, 2 if
; argv[1] is not "hello".

@.expected = private constant [6 x i8] c"hello\00"

declare i32 @puts(ptr)
declare i32 @strcmp(ptr, ptr)

define i32 @main(i32 %argc, ptr %argv) {
entry:
  %two = icmp eq i32 %argc, 2
  br i1 %two, label %check, label %bad.argc

check:
  %slot = getelementptr inbounds ptr, ptr %argv, i64 1
  %arg = load ptr, ptr %slot
  call i32 @puts(ptr %arg)
  %cmp = call i32 @strcmp(ptr %arg, ptr @.expected)
  %same = icmp eq i32 %cmp, 0
  %status = select i1 %same, i32 0, i32 2
  ret i32 %status

bad.argc:
  ret i32 1
}
