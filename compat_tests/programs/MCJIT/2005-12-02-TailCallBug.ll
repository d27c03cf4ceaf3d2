; CATALOGUE: MCJIT/2005-12-02-TailCallBug.ll
; KINDS: mcjit default
; EXIT: 0
;
; A fastcc function receives a pointer to itself and tail-calls through it,
; counting down from 10; the exit status is the value it stops at (0).  A
; broken fastcc call or tail call sequence returns garbage or crashes.

define fastcc i32 @countdown(ptr %self, i32 %n) {
entry:
  %zero = icmp sle i32 %n, 0
  br i1 %zero, label %done, label %again

again:
  %m = sub i32 %n, 1
  %r = tail call fastcc i32 %self(ptr %self, i32 %m)
  ret i32 %r

done:
  ret i32 %n
}

define i32 @main() {
entry:
  %r = call fastcc i32 @countdown(ptr @countdown, i32 10)
  ret i32 %r
}
