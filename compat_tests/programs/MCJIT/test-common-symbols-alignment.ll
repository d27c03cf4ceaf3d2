; CATALOGUE: MCJIT/test-common-symbols-alignment.ll
; KINDS: mcjit default
; OPTIONS: --opt 0
; EXIT: 0
;
; Common symbols with 16-byte alignment are placed around a one-byte common
; symbol.  Status 1 if the second 16-aligned symbol is misaligned, 2 if the
; first one is.

@first = common global i32 0, align 16
@byte = common global i8 0, align 1
@second = common global i32 0, align 16

define i32 @main() {
entry:
  store volatile i8 1, ptr @byte, align 1
  store volatile i32 2, ptr @first, align 16
  store volatile i32 3, ptr @second, align 16
  %a2 = ptrtoint ptr @second to i64
  %low2 = and i64 %a2, 15
  %bad2 = icmp ne i64 %low2, 0
  br i1 %bad2, label %second.bad, label %check.first

check.first:
  %a1 = ptrtoint ptr @first to i64
  %low1 = and i64 %a1, 15
  %bad1 = icmp ne i64 %low1, 0
  %status = select i1 %bad1, i32 2, i32 0
  ret i32 %status

second.bad:
  ret i32 1
}
