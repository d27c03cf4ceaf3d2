; CATALOGUE: MCJIT/2003-08-21-EnvironmentTest.ll
; KINDS: mcjit
; EXIT: 0
;
; main takes the environment as its third parameter and reads envp[0].
; Status 1: envp is NULL; 2: envp[0] is NULL; 3: envp[0] is an empty string;
; 4: envp[0] has no '=' (so it is not a NAME=VALUE entry).
; (Needs a non-empty environment, as any ordinary shell provides.)

declare ptr @strchr(ptr, i32)

define i32 @main(i32 %argc, ptr %argv, ptr %envp) {
entry:
  %no.env = icmp eq ptr %envp, null
  br i1 %no.env, label %fail.envp, label %first

first:
  %e0 = load ptr, ptr %envp
  %no.e0 = icmp eq ptr %e0, null
  br i1 %no.e0, label %fail.null, label %content

content:
  %c0 = load i8, ptr %e0
  %empty = icmp eq i8 %c0, 0
  br i1 %empty, label %fail.empty, label %shape

shape:
  %eq = call ptr @strchr(ptr %e0, i32 61)
  %no.eq = icmp eq ptr %eq, null
  %status = select i1 %no.eq, i32 4, i32 0
  ret i32 %status

fail.envp:
  ret i32 1

fail.null:
  ret i32 2

fail.empty:
  ret i32 3
}
