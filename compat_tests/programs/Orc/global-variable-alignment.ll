; CATALOGUE: Orc/global-variable-alignment.ll
; KINDS: default
; EXIT: 0
;
; An 8-byte-aligned global sits between two byte-sized ones.  The exit status
; is its address modulo 8, plus (value - initial value) for all three
; globals, which cancels out only when their initial data is in place.

@before = global i8 1, align 1
@middle = global i64 2, align 8
@after = global i8 3, align 1

define i32 @main(i32 %argc, ptr %argv) {
entry:
  %addr = ptrtoint ptr @middle to i64
  %rem = urem i64 %addr, 8
  %a = load volatile i8, ptr @before, align 1
  %b = load volatile i64, ptr @middle, align 8
  %c = load volatile i8, ptr @after, align 1
  %a64 = zext i8 %a to i64
  %c64 = zext i8 %c to i64
  %da = sub i64 %a64, 1
  %db = sub i64 %b, 2
  %dc = sub i64 %c64, 3
  %s1 = add i64 %rem, %da
  %s2 = add i64 %s1, %db
  %s3 = add i64 %s2, %dc
  %status = trunc i64 %s3 to i32
  ret i32 %status
}
