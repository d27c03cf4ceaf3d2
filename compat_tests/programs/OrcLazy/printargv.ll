; CATALOGUE: OrcLazy/printargv.ll
; KINDS: lazy
; ARGS: first second third
; EXIT: 0
; STDOUT: argc = 4
; STDOUT: argv[0] = printargv.ll
; STDOUT: argv[1] = first
; STDOUT: argv[2] = second
; STDOUT: argv[3] = third
; STDOUT: argv[4] = NULL
;
; Prints argc, every argv string and whether argv[argc] is NULL.  argv[0] is
; printed by its last path component only (the directory part depends on how
; the runner names the file).  Status 1 if argv[argc] is not NULL.

@.fmt.argc = private constant [11 x i8] c"argc = %d\0A\00"
@.fmt.arg = private constant [15 x i8] c"argv[%d] = %s\0A\00"
@.fmt.null = private constant [17 x i8] c"argv[%d] = NULL\0A\00"
@.fmt.notnull = private constant [21 x i8] c"argv[%d] = not NULL\0A\00"

declare i32 @printf(ptr, ...)
declare ptr @strrchr(ptr, i32)

define ptr @basename(ptr %path) {
entry:
  %slash = call ptr @strrchr(ptr %path, i32 47)
  %none = icmp eq ptr %slash, null
  %after = getelementptr inbounds i8, ptr %slash, i64 1
  %r = select i1 %none, ptr %path, ptr %after
  ret ptr %r
}

define i32 @main(i32 %argc, ptr %argv) {
entry:
  call i32 (ptr, ...) @printf(ptr @.fmt.argc, i32 %argc)
  %has0 = icmp sgt i32 %argc, 0
  br i1 %has0, label %first, label %loop

first:
  %a0 = load ptr, ptr %argv
  %base = call ptr @basename(ptr %a0)
  call i32 (ptr, ...) @printf(ptr @.fmt.arg, i32 0, ptr %base)
  br label %loop

loop:
  %i = phi i32 [ 0, %entry ], [ 1, %first ], [ %next, %body ]
  %more = icmp slt i32 %i, %argc
  br i1 %more, label %body, label %end

body:
  %idx = sext i32 %i to i64
  %slot = getelementptr inbounds ptr, ptr %argv, i64 %idx
  %arg = load ptr, ptr %slot
  call i32 (ptr, ...) @printf(ptr @.fmt.arg, i32 %i, ptr %arg)
  %next = add i32 %i, 1
  br label %loop

end:
  %last.idx = sext i32 %argc to i64
  %last.slot = getelementptr inbounds ptr, ptr %argv, i64 %last.idx
  %last = load ptr, ptr %last.slot
  %terminated = icmp eq ptr %last, null
  br i1 %terminated, label %ok, label %bad

ok:
  call i32 (ptr, ...) @printf(ptr @.fmt.null, i32 %argc)
  ret i32 0

bad:
  call i32 (ptr, ...) @printf(ptr @.fmt.notnull, i32 %argc)
  ret i32 1
}
