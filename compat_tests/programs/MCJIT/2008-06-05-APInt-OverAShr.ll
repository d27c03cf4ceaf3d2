; CATALOGUE: MCJIT/2008-06-05-APInt-OverAShr.ll
; KINDS: mcjit default
; EXIT: 0
; STDOUT: 1
;
; Arithmetic right shift of a negative 65-bit value, then its sign bit is
; printed: 1.  A logical shift (or a shift that loses the 65th bit) prints 0.
; The module names a 32-bit x86 target and data layout on purpose: a JIT on
; x86-64 must cope with, or override, the foreign target description.
; (Upstream this ran in lli's interpreter; here it runs under the JIT.)

target datalayout = "e-m:e-p:32:32-p270:32:32-p271:32:32-p272:64:64-i128:128-f64:32:64-f80:32-n8:16:32-S128"
target triple = "i686-pc-linux-gnu"

@.fmt = private constant [4 x i8] c"%d\0A\00"

declare i32 @printf(ptr, ...)

define i32 @main() {
entry:
  %slot = alloca i65, align 8
  ; -2^64 + 5: only the sign bit (bit 64) and two low bits are set.
  store volatile i65 -18446744073709551611, ptr %slot, align 8
  %v = load volatile i65, ptr %slot, align 8
  %shifted = ashr i65 %v, 3
  %sign.w = lshr i65 %shifted, 64
  %sign = trunc i65 %sign.w to i32
  call i32 (ptr, ...) @printf(ptr @.fmt, i32 %sign)
  ret i32 0
}
