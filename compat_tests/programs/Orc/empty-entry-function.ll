; CATALOGUE: Orc/empty-entry-function.ll
; KINDS: default
; ENTRY:
; EXIT: nonzero
; STDERR-CONTAINS: --entry-function name cannot be empty
;
; Run with an empty entry-function name: the engine must refuse it with lli's
; message ("--entry-function name cannot be empty") and a non-zero exit
; status.  main itself returns 0, so silently falling back to main is caught.

define i32 @main(i32 %argc, ptr %argv) {
entry:
  ret i32 0
}
