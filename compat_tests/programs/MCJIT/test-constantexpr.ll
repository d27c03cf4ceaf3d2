; CATALOGUE: MCJIT/test-constantexpr.ll
; KINDS: mcjit default
; EXIT: 0
;
; main evaluates a constant expression that converts a global's address to a
; boolean (ptrtoint to i1, i.e. the address's lowest bit).  It only has to
; compile; the global is 4-byte aligned, so the bit, and the status, is 0.

@flag = global i32 0, align 4
@sink = global i32 0, align 4

define i32 @main() {
entry:
  %b = zext i1 ptrtoint (ptr @flag to i1) to i32
  store volatile i32 %b, ptr @sink
  %v = load volatile i32, ptr @sink
  ret i32 %v
}
