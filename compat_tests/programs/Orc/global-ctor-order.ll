; CATALOGUE: Orc/global-ctor-order.ll
; KINDS: default
; EXIT: 0
; STDOUT: priority 1000 #1
; STDOUT: priority 1000 #2
; STDOUT: priority 1000 #3
; STDOUT: priority 1000 #4
; STDOUT: priority 1000 #5
; STDOUT: priority 1000 #6
; STDOUT: priority 1000 #7
; STDOUT: priority 2000 #1
; STDOUT: priority 2000 #2
; STDOUT: priority 2000 #3
; STDOUT: priority 2000 #4
; STDOUT: priority 2000 #5
; STDOUT: priority 2000 #6
; STDOUT: priority 2000 #7
; STDOUT: priority 2000 #8
; STDOUT: priority 65535 #1
; STDOUT: priority 65535 #2
; STDOUT: priority 65535 #3
; STDOUT: priority 65535 #4
; STDOUT: priority 65535 #5
; STDOUT: priority 65535 #6
; STDOUT: priority 65535 #7
; STDOUT: priority 65535 #8
;
; 23 constructors at three priorities (1000, 2000, 65535) are listed in the
; constructor table out of order.  Each prints its priority and its position
; among the entries of that priority in table order; they must run sorted by
; priority, smallest first, and in table order within one priority.

@llvm.global_ctors = appending global [23 x { i32, ptr, ptr }] [
  { i32, ptr, ptr } { i32 1000, ptr @ctor_p1000_1, ptr null },
  { i32, ptr, ptr } { i32 2000, ptr @ctor_p2000_1, ptr null },
  { i32, ptr, ptr } { i32 2000, ptr @ctor_p2000_2, ptr null },
  { i32, ptr, ptr } { i32 1000, ptr @ctor_p1000_2, ptr null },
  { i32, ptr, ptr } { i32 65535, ptr @ctor_p65535_1, ptr null },
  { i32, ptr, ptr } { i32 1000, ptr @ctor_p1000_3, ptr null },
  { i32, ptr, ptr } { i32 1000, ptr @ctor_p1000_4, ptr null },
  { i32, ptr, ptr } { i32 1000, ptr @ctor_p1000_5, ptr null },
  { i32, ptr, ptr } { i32 65535, ptr @ctor_p65535_2, ptr null },
  { i32, ptr, ptr } { i32 65535, ptr @ctor_p65535_3, ptr null },
  { i32, ptr, ptr } { i32 65535, ptr @ctor_p65535_4, ptr null },
  { i32, ptr, ptr } { i32 65535, ptr @ctor_p65535_5, ptr null },
  { i32, ptr, ptr } { i32 2000, ptr @ctor_p2000_3, ptr null },
  { i32, ptr, ptr } { i32 65535, ptr @ctor_p65535_6, ptr null },
  { i32, ptr, ptr } { i32 2000, ptr @ctor_p2000_4, ptr null },
  { i32, ptr, ptr } { i32 2000, ptr @ctor_p2000_5, ptr null },
  { i32, ptr, ptr } { i32 2000, ptr @ctor_p2000_6, ptr null },
  { i32, ptr, ptr } { i32 2000, ptr @ctor_p2000_7, ptr null },
  { i32, ptr, ptr } { i32 1000, ptr @ctor_p1000_6, ptr null },
  { i32, ptr, ptr } { i32 2000, ptr @ctor_p2000_8, ptr null },
  { i32, ptr, ptr } { i32 65535, ptr @ctor_p65535_7, ptr null },
  { i32, ptr, ptr } { i32 1000, ptr @ctor_p1000_7, ptr null },
  { i32, ptr, ptr } { i32 65535, ptr @ctor_p65535_8, ptr null }
]

@.msg.ctor_p1000_1 = private constant [17 x i8] c"priority 1000 #1\00"
@.msg.ctor_p2000_1 = private constant [17 x i8] c"priority 2000 #1\00"
@.msg.ctor_p2000_2 = private constant [17 x i8] c"priority 2000 #2\00"
@.msg.ctor_p1000_2 = private constant [17 x i8] c"priority 1000 #2\00"
@.msg.ctor_p65535_1 = private constant [18 x i8] c"priority 65535 #1\00"
@.msg.ctor_p1000_3 = private constant [17 x i8] c"priority 1000 #3\00"
@.msg.ctor_p1000_4 = private constant [17 x i8] c"priority 1000 #4\00"
@.msg.ctor_p1000_5 = private constant [17 x i8] c"priority 1000 #5\00"
@.msg.ctor_p65535_2 = private constant [18 x i8] c"priority 65535 #2\00"
@.msg.ctor_p65535_3 = private constant [18 x i8] c"priority 65535 #3\00"
@.msg.ctor_p65535_4 = private constant [18 x i8] c"priority 65535 #4\00"
@.msg.ctor_p65535_5 = private constant [18 x i8] c"priority 65535 #5\00"
@.msg.ctor_p2000_3 = private constant [17 x i8] c"priority 2000 #3\00"
@.msg.ctor_p65535_6 = private constant [18 x i8] c"priority 65535 #6\00"
@.msg.ctor_p2000_4 = private constant [17 x i8] c"priority 2000 #4\00"
@.msg.ctor_p2000_5 = private constant [17 x i8] c"priority 2000 #5\00"
@.msg.ctor_p2000_6 = private constant [17 x i8] c"priority 2000 #6\00"
@.msg.ctor_p2000_7 = private constant [17 x i8] c"priority 2000 #7\00"
@.msg.ctor_p1000_6 = private constant [17 x i8] c"priority 1000 #6\00"
@.msg.ctor_p2000_8 = private constant [17 x i8] c"priority 2000 #8\00"
@.msg.ctor_p65535_7 = private constant [18 x i8] c"priority 65535 #7\00"
@.msg.ctor_p1000_7 = private constant [17 x i8] c"priority 1000 #7\00"
@.msg.ctor_p65535_8 = private constant [18 x i8] c"priority 65535 #8\00"

declare i32 @puts(ptr)

define internal void @ctor_p1000_1() {
entry:
  call i32 @puts(ptr @.msg.ctor_p1000_1)
  ret void
}

define internal void @ctor_p2000_1() {
entry:
  call i32 @puts(ptr @.msg.ctor_p2000_1)
  ret void
}

define internal void @ctor_p2000_2() {
entry:
  call i32 @puts(ptr @.msg.ctor_p2000_2)
  ret void
}

define internal void @ctor_p1000_2() {
entry:
  call i32 @puts(ptr @.msg.ctor_p1000_2)
  ret void
}

define internal void @ctor_p65535_1() {
entry:
  call i32 @puts(ptr @.msg.ctor_p65535_1)
  ret void
}

define internal void @ctor_p1000_3() {
entry:
  call i32 @puts(ptr @.msg.ctor_p1000_3)
  ret void
}

define internal void @ctor_p1000_4() {
entry:
  call i32 @puts(ptr @.msg.ctor_p1000_4)
  ret void
}

define internal void @ctor_p1000_5() {
entry:
  call i32 @puts(ptr @.msg.ctor_p1000_5)
  ret void
}

define internal void @ctor_p65535_2() {
entry:
  call i32 @puts(ptr @.msg.ctor_p65535_2)
  ret void
}

define internal void @ctor_p65535_3() {
entry:
  call i32 @puts(ptr @.msg.ctor_p65535_3)
  ret void
}

define internal void @ctor_p65535_4() {
entry:
  call i32 @puts(ptr @.msg.ctor_p65535_4)
  ret void
}

define internal void @ctor_p65535_5() {
entry:
  call i32 @puts(ptr @.msg.ctor_p65535_5)
  ret void
}

define internal void @ctor_p2000_3() {
entry:
  call i32 @puts(ptr @.msg.ctor_p2000_3)
  ret void
}

define internal void @ctor_p65535_6() {
entry:
  call i32 @puts(ptr @.msg.ctor_p65535_6)
  ret void
}

define internal void @ctor_p2000_4() {
entry:
  call i32 @puts(ptr @.msg.ctor_p2000_4)
  ret void
}

define internal void @ctor_p2000_5() {
entry:
  call i32 @puts(ptr @.msg.ctor_p2000_5)
  ret void
}

define internal void @ctor_p2000_6() {
entry:
  call i32 @puts(ptr @.msg.ctor_p2000_6)
  ret void
}

define internal void @ctor_p2000_7() {
entry:
  call i32 @puts(ptr @.msg.ctor_p2000_7)
  ret void
}

define internal void @ctor_p1000_6() {
entry:
  call i32 @puts(ptr @.msg.ctor_p1000_6)
  ret void
}

define internal void @ctor_p2000_8() {
entry:
  call i32 @puts(ptr @.msg.ctor_p2000_8)
  ret void
}

define internal void @ctor_p65535_7() {
entry:
  call i32 @puts(ptr @.msg.ctor_p65535_7)
  ret void
}

define internal void @ctor_p1000_7() {
entry:
  call i32 @puts(ptr @.msg.ctor_p1000_7)
  ret void
}

define internal void @ctor_p65535_8() {
entry:
  call i32 @puts(ptr @.msg.ctor_p65535_8)
  ret void
}

define i32 @main(i32 %argc, ptr %argv) {
entry:
  ret i32 0
}
