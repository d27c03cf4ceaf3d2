; CATALOGUE: MCJIT/2003-05-06-LivenessClobber.ll
; KINDS: mcjit default
; EXIT: 1
;
; A zero-initialised 64-bit global is read by an internal helper that adds
; one; main returns the helper's result, so the expected status is 1 (not 0).
; Garbage in the zero-filled global, or a clobbered return register, shows up
; as another status.

@counter = global i64 0, align 8

define internal i64 @next_value() {
entry:
  %v = load i64, ptr @counter, align 8
  %r = add i64 %v, 1
  ret i64 %r
}

define i32 @main() {
entry:
  %r = call i64 @next_value()
  %status = trunc i64 %r to i32
  ret i32 %status
}
