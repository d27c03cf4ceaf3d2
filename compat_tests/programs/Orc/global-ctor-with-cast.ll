; CATALOGUE: Orc/global-ctor-with-cast.ll
; KINDS: default
; EXIT: 0
; STDOUT: constructed
;
; The constructor's own signature (i32 ()) does not match the constructor
; table's entry type (void ()); it prints a word and must still be run before
; main.

@llvm.global_ctors = appending global [1 x { i32, ptr, ptr }] [{ i32, ptr, ptr } { i32 65535, ptr @announce, ptr null }]

@.word = private constant [12 x i8] c"constructed\00"

declare i32 @puts(ptr)

define i32 @announce() {
entry:
  %r = call i32 @puts(ptr @.word)
  ret i32 %r
}

define i32 @main(i32 %argc, ptr %argv) {
entry:
  ret i32 0
}
