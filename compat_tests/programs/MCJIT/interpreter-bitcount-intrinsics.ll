; CATALOGUE: MCJIT/interpreter-bitcount-intrinsics.ll
; KINDS: mcjit default
; EXIT: 0
;
; Bit-counting intrinsics on run-time values (volatile loads, so nothing is
; constant-folded), each wrong answer setting one bit of the exit status:
;   bit 0  ctpop.i8   (0xB5)                          = 5
;   bit 1  ctpop.i16  (0x8421)                        = 4
;   bit 2  ctpop.i32  (0xDEADBEEF)                    = 24
;   bit 3  ctpop.i33  (0x1_0000_000F)                 = 5
;   bit 4  ctpop.i64  (all ones)                      = 64
;   bit 5  ctpop.i128 (2^127 + 2^64 + 1)              = 3
;   bit 6  ctlz.i32   (0x1000)                        = 19
;   bit 7  cttz.i64   (2^40)                          = 40
; The intrinsics are deliberately used without declarations, which only
; recent LLVM (not LLVM 14) accepts.
; (Upstream this ran in lli's interpreter; here it runs under the JIT.)

@v8 = global i8 -75
@v16 = global i16 -31711
@v32 = global i32 -559038737
@v33 = global i33 4294967311
@v64 = global i64 -1
@v128 = global i128 170141183460469231750134047789593657345
@z32 = global i32 4096
@z64 = global i64 1099511627776

define i32 @bit_if_wrong(i1 %wrong, i32 %bit) {
entry:
  %b = zext i1 %wrong to i32
  %r = shl i32 %b, %bit
  ret i32 %r
}

define i32 @main() {
entry:
  %a8 = load volatile i8, ptr @v8
  %p8 = call i8 @llvm.ctpop.i8(i8 %a8)
  %w0 = icmp ne i8 %p8, 5
  %m0 = call i32 @bit_if_wrong(i1 %w0, i32 0)

  %a16 = load volatile i16, ptr @v16
  %p16 = call i16 @llvm.ctpop.i16(i16 %a16)
  %w1 = icmp ne i16 %p16, 4
  %m1 = call i32 @bit_if_wrong(i1 %w1, i32 1)

  %a32 = load volatile i32, ptr @v32
  %p32 = call i32 @llvm.ctpop.i32(i32 %a32)
  %w2 = icmp ne i32 %p32, 24
  %m2 = call i32 @bit_if_wrong(i1 %w2, i32 2)

  %a33 = load volatile i33, ptr @v33
  %p33 = call i33 @llvm.ctpop.i33(i33 %a33)
  %w3 = icmp ne i33 %p33, 5
  %m3 = call i32 @bit_if_wrong(i1 %w3, i32 3)

  %a64 = load volatile i64, ptr @v64
  %p64 = call i64 @llvm.ctpop.i64(i64 %a64)
  %w4 = icmp ne i64 %p64, 64
  %m4 = call i32 @bit_if_wrong(i1 %w4, i32 4)

  %a128 = load volatile i128, ptr @v128
  %p128 = call i128 @llvm.ctpop.i128(i128 %a128)
  %w5 = icmp ne i128 %p128, 3
  %m5 = call i32 @bit_if_wrong(i1 %w5, i32 5)

  %b32 = load volatile i32, ptr @z32
  %lz = call i32 @llvm.ctlz.i32(i32 %b32, i1 false)
  %w6 = icmp ne i32 %lz, 19
  %m6 = call i32 @bit_if_wrong(i1 %w6, i32 6)

  %b64 = load volatile i64, ptr @z64
  %tz = call i64 @llvm.cttz.i64(i64 %b64, i1 false)
  %w7 = icmp ne i64 %tz, 40
  %m7 = call i32 @bit_if_wrong(i1 %w7, i32 7)

  %s1 = or i32 %m0, %m1
  %s2 = or i32 %s1, %m2
  %s3 = or i32 %s2, %m3
  %s4 = or i32 %s3, %m4
  %s5 = or i32 %s4, %m5
  %s6 = or i32 %s5, %m6
  %s7 = or i32 %s6, %m7
  ret i32 %s7
}
