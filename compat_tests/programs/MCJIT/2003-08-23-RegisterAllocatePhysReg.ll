; CATALOGUE: MCJIT/2003-08-23-RegisterAllocatePhysReg.ll
; KINDS: mcjit default
; EXIT: 0
;
; main(argc): a variable-sized stack array is allocated while sixteen values
; derived from argc are live; they are used after the array has been written
; and read.  If the register allocator hands out the stack pointer (or any
; clobbered register) for one of them, the final sum is wrong: status 1.
; sum over k=1..16 of (argc*k + k) is 136*(argc+1).

define i32 @main(i32 %argc) {
entry:
  %v1 = mul i32 %argc, 1
  %v2 = mul i32 %argc, 2
  %v3 = mul i32 %argc, 3
  %v4 = mul i32 %argc, 4
  %v5 = mul i32 %argc, 5
  %v6 = mul i32 %argc, 6
  %v7 = mul i32 %argc, 7
  %v8 = mul i32 %argc, 8
  %v9 = mul i32 %argc, 9
  %v10 = mul i32 %argc, 10
  %v11 = mul i32 %argc, 11
  %v12 = mul i32 %argc, 12
  %v13 = mul i32 %argc, 13
  %v14 = mul i32 %argc, 14
  %v15 = mul i32 %argc, 15
  %v16 = mul i32 %argc, 16
  %n = add i32 %argc, 16
  %arr = alloca i32, i32 %n, align 4
  %p1 = getelementptr inbounds i32, ptr %arr, i32 %argc
  store volatile i32 %v16, ptr %p1
  %back = load volatile i32, ptr %p1
  %w1 = add i32 %v1, 1
  %w2 = add i32 %v2, 2
  %w3 = add i32 %v3, 3
  %w4 = add i32 %v4, 4
  %w5 = add i32 %v5, 5
  %w6 = add i32 %v6, 6
  %w7 = add i32 %v7, 7
  %w8 = add i32 %v8, 8
  %w9 = add i32 %v9, 9
  %w10 = add i32 %v10, 10
  %w11 = add i32 %v11, 11
  %w12 = add i32 %v12, 12
  %w13 = add i32 %v13, 13
  %w14 = add i32 %v14, 14
  %w15 = add i32 %v15, 15
  %w16 = add i32 %back, 16
  %s1 = add i32 %w1, %w2
  %s2 = add i32 %s1, %w3
  %s3 = add i32 %s2, %w4
  %s4 = add i32 %s3, %w5
  %s5 = add i32 %s4, %w6
  %s6 = add i32 %s5, %w7
  %s7 = add i32 %s6, %w8
  %s8 = add i32 %s7, %w9
  %s9 = add i32 %s8, %w10
  %s10 = add i32 %s9, %w11
  %s11 = add i32 %s10, %w12
  %s12 = add i32 %s11, %w13
  %s13 = add i32 %s12, %w14
  %s14 = add i32 %s13, %w15
  %sum = add i32 %s14, %w16
  %argc1 = add i32 %argc, 1
  %expected = mul i32 %argc1, 136
  %ok = icmp eq i32 %sum, %expected
  %status = select i1 %ok, i32 0, i32 1
  ret i32 %status
}
