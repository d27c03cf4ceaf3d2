; CATALOGUE: MCJIT/remote/test-ptr-reloc-sm-pic.ll
; KINDS: mcjit remote
; OPTIONS: --relocation-model pic --code-model small --opt 0
; EXIT: 0
;
; Executed in a separate process, as PIC with the small code model: two
; globals hold the addresses of two different private strings, so the data
; relocations must be applied for the child's addresses. Status 1 if the two
; addresses are equal, 2 if either pointer does not lead to its own string.

@.str.first = private constant [6 x i8] c"first\00"
@.str.second = private constant [7 x i8] c"second\00"

@ptr.first = global ptr @.str.first, align 8
@ptr.second = global ptr @.str.second, align 8

define i32 @main() {
entry:
  %a = load ptr, ptr @ptr.first, align 8
  %b = load ptr, ptr @ptr.second, align 8
  %same = icmp eq ptr %a, %b
  br i1 %same, label %equal, label %contents

contents:
  %ca = load i8, ptr %a
  %cb = load i8, ptr %b
  %oka = icmp eq i8 %ca, 102
  %okb = icmp eq i8 %cb, 115
  %ok = and i1 %oka, %okb
  %status = select i1 %ok, i32 0, i32 2
  ret i32 %status

equal:
  ret i32 1
}
