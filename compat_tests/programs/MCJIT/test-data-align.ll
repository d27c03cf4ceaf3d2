; CATALOGUE: MCJIT/test-data-align.ll
; KINDS: mcjit default
; OPTIONS: --opt 0
; EXIT: 0
;
; A global declared with 32-byte alignment, placed after a one-byte global;
; status 1 if its address is not a multiple of 32, 2 if its data is wrong.

@pad = global i8 1, align 1
@aligned = global i32 7, align 32

define i32 @main() {
entry:
  %addr = ptrtoint ptr @aligned to i64
  %low = and i64 %addr, 31
  %misaligned = icmp ne i64 %low, 0
  br i1 %misaligned, label %bad.align, label %data

data:
  %v = load i32, ptr @aligned, align 32
  %ok = icmp eq i32 %v, 7
  %status = select i1 %ok, i32 0, i32 2
  ret i32 %status

bad.align:
  ret i32 1
}
