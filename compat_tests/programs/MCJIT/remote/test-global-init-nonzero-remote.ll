; CATALOGUE: MCJIT/remote/test-global-init-nonzero-remote.ll
; KINDS: mcjit remote
; EXIT: 0
;
; Executed in a separate process: a global counter that starts at 1 is
; incremented 49 times; the status is counter - 50, so the initial data must
; have been copied to the child.

@counter = global i32 1, align 4

define i32 @main() {
entry:
  br label %loop

loop:
  %i = phi i32 [ 0, %entry ], [ %next, %loop ]
  %c = load i32, ptr @counter, align 4
  %c1 = add i32 %c, 1
  store i32 %c1, ptr @counter, align 4
  %next = add i32 %i, 1
  %more = icmp ne i32 %next, 49
  br i1 %more, label %loop, label %done

done:
  %final = load i32, ptr @counter, align 4
  %status = sub i32 %final, 50
  ret i32 %status
}
