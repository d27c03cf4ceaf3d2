; CATALOGUE: MCJIT/eh-lg-pic.ll
; KINDS: mcjit
; OPTIONS: --relocation-model pic --code-model large
; EXIT: 0
;
; The throw and catch of a C++ int under position-independent code with the
; large code model, plus a call to an internal function, so GOT-relative
; relocations (and large-model unwind info) are exercised.

@_ZTIi = external constant ptr

declare ptr @__cxa_allocate_exception(i64)
declare void @__cxa_throw(ptr, ptr, ptr)
declare ptr @__cxa_begin_catch(ptr)
declare void @__cxa_end_catch()
declare i32 @__gxx_personality_v0(...)

; Throws a C++ int, like "throw <value>;" in C++.
define internal void @throw_int() {
entry:
  %exn = call ptr @__cxa_allocate_exception(i64 4)
  store i32 42, ptr %exn, align 4
  call void @__cxa_throw(ptr %exn, ptr @_ZTIi, ptr null)
  unreachable
}

; Calls @throw_int and catches the int it throws.  Returns 0 when the
; caught value is 42, 1 when nothing was thrown, 2 when the selector does
; not name int, 3 when the value is wrong.
define i32 @catch_int() personality ptr @__gxx_personality_v0 {
entry:
  invoke void @throw_int()
          to label %no.throw unwind label %lpad

no.throw:
  ret i32 1

lpad:
  %lp = landingpad { ptr, i32 }
          catch ptr @_ZTIi
  %exn = extractvalue { ptr, i32 } %lp, 0
  %sel = extractvalue { ptr, i32 } %lp, 1
  %matched = icmp sgt i32 %sel, 0
  br i1 %matched, label %catch, label %wrong.type

catch:
  %payload = call ptr @__cxa_begin_catch(ptr %exn)
  %v = load i32, ptr %payload, align 4
  call void @__cxa_end_catch()
  %right = icmp eq i32 %v, 42
  %status = select i1 %right, i32 0, i32 3
  ret i32 %status

wrong.type:
  ret i32 2
}

define internal i32 @internal_offset(i32 %x) {
entry:
  %r = sub i32 %x, 5
  ret i32 %r
}

define i32 @main() {
entry:
  %r = call i32 @catch_int()
  %five = call i32 @internal_offset(i32 5)
  %status = add i32 %r, %five
  ret i32 %status
}
