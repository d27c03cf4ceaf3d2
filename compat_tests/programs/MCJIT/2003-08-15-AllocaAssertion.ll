; CATALOGUE: MCJIT/2003-08-15-AllocaAssertion.ll
; KINDS: mcjit default
; EXIT: 0
;
; main(argc) only: argc is the element count of two dynamically sized stack
; arrays.  Both arrays are written and read back; they must be distinct and
; keep their contents (status 1 or 2 otherwise).

define i32 @main(i32 %argc) {
entry:
  %a = alloca i32, i32 %argc, align 4
  %b = alloca i64, i32 %argc, align 8
  store volatile i32 %argc, ptr %a
  store volatile i64 77, ptr %b
  %same = icmp eq ptr %a, %b
  br i1 %same, label %overlap, label %read

read:
  %va = load volatile i32, ptr %a
  %vb = load volatile i64, ptr %b
  %oka = icmp eq i32 %va, %argc
  %okb = icmp eq i64 %vb, 77
  %ok = and i1 %oka, %okb
  %status = select i1 %ok, i32 0, i32 2
  ret i32 %status

overlap:
  ret i32 1
}
