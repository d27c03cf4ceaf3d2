; CATALOGUE: MCJIT/2002-12-16-ArgTest.ll
; KINDS: mcjit default
; EXIT: 0
;
; main(argc, argv) prints argc and then walks argv[0 .. argc-1], printing each
; entry.  argc must be at least 1 (argv[0] is the program path) and no entry
; below argc may be NULL; violations give a non-zero status (or a crash when
; argv is garbage).

@.fmt.argc = private constant [10 x i8] c"argc: %d\0A\00"
@.fmt.arg = private constant [14 x i8] c"argv[%d]: %s\0A\00"

declare i32 @printf(ptr, ...)

define i32 @main(i32 %argc, ptr %argv) {
entry:
  call i32 (ptr, ...) @printf(ptr @.fmt.argc, i32 %argc)
  %few = icmp slt i32 %argc, 1
  br i1 %few, label %no.args, label %loop

loop:
  %i = phi i32 [ 0, %entry ], [ %next, %print ]
  %done = icmp eq i32 %i, %argc
  br i1 %done, label %finished, label %body

body:
  %idx = sext i32 %i to i64
  %slot = getelementptr inbounds ptr, ptr %argv, i64 %idx
  %arg = load ptr, ptr %slot
  %isnull = icmp eq ptr %arg, null
  br i1 %isnull, label %null.arg, label %print

print:
  call i32 (ptr, ...) @printf(ptr @.fmt.arg, i32 %i, ptr %arg)
  %next = add i32 %i, 1
  br label %loop

finished:
  ret i32 0

no.args:
  ret i32 2

null.arg:
  ret i32 1
}
