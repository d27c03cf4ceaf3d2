; CATALOGUE: MCJIT/2003-01-15-AlignmentTest.ll
; KINDS: mcjit default
; EXIT: 0
;
; A double on the stack must be at least 4-byte aligned: the exit status is
; the low two bits of its address.  The slot is passed to another function so
; it really lives in memory.

define void @store_pi(ptr %slot) {
entry:
  store volatile double 3.0, ptr %slot
  ret void
}

define i32 @main() {
entry:
  %pad = alloca i8, align 1
  store volatile i8 1, ptr %pad
  %d = alloca double, align 4
  call void @store_pi(ptr %d)
  %addr = ptrtoint ptr %d to i64
  %low = and i64 %addr, 3
  %status = trunc i64 %low to i32
  ret i32 %status
}
