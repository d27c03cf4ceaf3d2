; CATALOGUE: MCJIT/2007-12-10-APIntLoadStore.ll
; KINDS: mcjit default
; EXIT: 0
;
; A 75-bit integer (wider than a machine word, not a whole number of bytes)
; is stored to an aligned stack slot and read back; status 0 when all 75
; bits survive, 1 when the low 64 bits differ, 2 when the top 11 bits do.
; (Upstream this ran in lli's interpreter; here it runs under the JIT.)

define i32 @main() {
entry:
  %slot = alloca i75, align 16
  ; 0x2AB_0123456789ABCDEF: bits above 64 set, bit 74 (the sign) clear.
  store volatile i75 12599208187872840240623, ptr %slot, align 16
  %v = load volatile i75, ptr %slot, align 16
  %lo = trunc i75 %v to i64
  %lo.ok = icmp eq i64 %lo, 81985529216486895
  %hi.w = lshr i75 %v, 64
  %hi = trunc i75 %hi.w to i32
  %hi.ok = icmp eq i32 %hi, 683
  br i1 %lo.ok, label %check.hi, label %bad.lo

check.hi:
  %status = select i1 %hi.ok, i32 0, i32 2
  ret i32 %status

bad.lo:
  ret i32 1
}
