; CATALOGUE: MCJIT/test-loadstore.ll
; KINDS: mcjit default
; EXIT: 0
;
; Loads and stores of 8-, 16-, 32- and 64-bit values through pointers (into
; globals and into a variable-sized stack array), each read back and
; compared.  Each width that reads back wrong sets one bit of the status.

@g8 = global i8 0
@g16 = global i16 0
@g32 = global i32 0
@g64 = global i64 0

; Copies *src to *dst at every width and returns a bit mask of the widths
; whose copy does not match.
define i32 @copy_all(ptr %dst, ptr %src) {
entry:
  %a = load i8, ptr %src
  store i8 %a, ptr @g8
  %a2 = load i8, ptr @g8
  store i8 %a2, ptr %dst
  %a3 = load i8, ptr %dst
  %bad8 = icmp ne i8 %a3, -85

  %p16s = getelementptr inbounds i8, ptr %src, i64 2
  %p16d = getelementptr inbounds i8, ptr %dst, i64 2
  %b = load i16, ptr %p16s
  store i16 %b, ptr @g16
  %b2 = load i16, ptr @g16
  store i16 %b2, ptr %p16d
  %b3 = load i16, ptr %p16d
  %bad16 = icmp ne i16 %b3, -4661

  %p32s = getelementptr inbounds i8, ptr %src, i64 4
  %p32d = getelementptr inbounds i8, ptr %dst, i64 4
  %c = load i32, ptr %p32s
  store i32 %c, ptr @g32
  %c2 = load i32, ptr @g32
  store i32 %c2, ptr %p32d
  %c3 = load i32, ptr %p32d
  %bad32 = icmp ne i32 %c3, 305419896

  %p64s = getelementptr inbounds i8, ptr %src, i64 8
  %p64d = getelementptr inbounds i8, ptr %dst, i64 8
  %d = load i64, ptr %p64s
  store i64 %d, ptr @g64
  %d2 = load i64, ptr @g64
  store i64 %d2, ptr %p64d
  %d3 = load i64, ptr %p64d
  %bad64 = icmp ne i64 %d3, -81985529216486896

  %m8 = zext i1 %bad8 to i32
  %m16.b = zext i1 %bad16 to i32
  %m16 = shl i32 %m16.b, 1
  %m32.b = zext i1 %bad32 to i32
  %m32 = shl i32 %m32.b, 2
  %m64.b = zext i1 %bad64 to i32
  %m64 = shl i32 %m64.b, 3
  %r1 = or i32 %m8, %m16
  %r2 = or i32 %r1, %m32
  %r3 = or i32 %r2, %m64
  ret i32 %r3
}

define i32 @main(i32 %argc, ptr %argv) {
entry:
  ; Two 16-byte records in one variable-sized stack array: source then dest.
  %n = add i32 %argc, 1
  %words = shl i32 %n, 1
  %arr = alloca i64, i32 %words, align 8
  %dst = getelementptr inbounds i64, ptr %arr, i64 2
  store i8 -85, ptr %arr
  %s16 = getelementptr inbounds i8, ptr %arr, i64 2
  store i16 -4661, ptr %s16
  %s32 = getelementptr inbounds i8, ptr %arr, i64 4
  store i32 305419896, ptr %s32
  %s64 = getelementptr inbounds i8, ptr %arr, i64 8
  store i64 -81985529216486896, ptr %s64
  %r = call i32 @copy_all(ptr %dst, ptr %arr)
  ret i32 %r
}
