; CATALOGUE: MCJIT/test-global-ctors.ll
; KINDS: mcjit default
; EXIT: 0
;
; A static constructor, placed in the .text.startup section, changes a global
; from 1 to 0 before main runs; main returns the global, so status 1 means
; the constructor did not run first.  A destructor entry is also listed and
; must be accepted.

@state = global i32 1, align 4

@llvm.global_ctors = appending global [1 x { i32, ptr, ptr }] [{ i32, ptr, ptr } { i32 65535, ptr @init_state, ptr null }]
@llvm.global_dtors = appending global [1 x { i32, ptr, ptr }] [{ i32, ptr, ptr } { i32 65535, ptr @fini_state, ptr null }]

define internal void @init_state() section ".text.startup" {
entry:
  store i32 0, ptr @state, align 4
  ret void
}

define internal void @fini_state() {
entry:
  store i32 2, ptr @state, align 4
  ret void
}

define i32 @main() {
entry:
  %v = load i32, ptr @state, align 4
  ret i32 %v
}
