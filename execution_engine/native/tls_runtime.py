"""The engine's thread-local storage runtime: per-thread copies of lowered
thread-local variables (see :mod:`..ir.thread_local` for the lowering).

A lowered variable ``@x`` is a *control block* in ordinary data memory::

    word 0  index      0 until the variable is first touched; then its slot
    word 1  size       bytes of one copy
    word 2  align      alignment of one copy
    word 3  offset     where the initial image starts (from the block)
    offset  image      the variable's initial value (never written by the runtime)

Every access calls ``__ee_tls_address(ptr block)``, which returns the
calling thread's copy. Each thread has one table (found through one pthread
key, created once per process) of copy pointers indexed by the variables'
indices; the fast path is ``pthread_getspecific`` plus two loads. On a
thread's first touch of a variable the slow path (under one process-wide
mutex) gives the variable an index (reusing released ones), grows the
table and copies the image into a fresh allocation.

What is freed when: a thread's copies and its table at the thread's exit
(the key's destructor); every thread's copy of a variable when
``__ee_tls_release_all(ptr blocks, i64 n)`` is called for it (the engine
does so when the set that defines it is removed or the engine is closed),
and its index is reused. The main thread's copies live until released (no
destructor runs for it at process exit).

The runtime is LLVM IR compiled once per process by a private LLJIT (no C
compiler needed) and its entry points are registered as process symbols,
so that :class:`~..linking.resolver.ProcessResolver` resolves them: in this
process, and in a remote executor's process, which has its own runtime.
Thread-safety: everything but the fast path holds the runtime's mutex; the
fast path reads only the calling thread's own table.
"""

from __future__ import annotations

import ctypes
import threading

import llvmlite.binding as llvm

ADDRESS = "__ee_tls_address"
RELEASE_ALL = "__ee_tls_release_all"
LIVE_COPIES = "__ee_tls_live_copies"
NAMES = frozenset({ADDRESS, RELEASE_ALL, LIVE_COPIES})
BLOCK_HEADER = 32  # bytes before the image, at least

_IR = r"""
%tbl = type { ptr, ptr, i64, ptr }   ; next, prev, capacity, slots

@key = internal global i32 0
@lock = internal global [64 x i8] zeroinitializer, align 16   ; a pthread_mutex_t
@head = internal global ptr null
@next_index = internal global i64 1
@free_indices = internal global ptr null
@free_count = internal global i64 0
@free_capacity = internal global i64 0
@live = internal global i64 0

declare ptr @pthread_getspecific(i32)
declare i32 @pthread_setspecific(i32, ptr)
declare i32 @pthread_key_create(ptr, ptr)
declare i32 @pthread_mutex_lock(ptr)
declare i32 @pthread_mutex_unlock(ptr)
declare ptr @calloc(i64, i64)
declare ptr @realloc(ptr, i64)
declare void @free(ptr)
declare i32 @posix_memalign(ptr, i64, i64)
declare void @abort()
declare void @llvm.memcpy.p0.p0.i64(ptr, ptr, i64, i1)
declare void @llvm.memset.p0.i64(ptr, i8, i64, i1)

define i32 @__ee_tls_init() {
  %r = call i32 @pthread_key_create(ptr @key, ptr @thread_exit)
  ret i32 %r
}

define i64 @__ee_tls_live_copies() {
  call i32 @pthread_mutex_lock(ptr @lock)
  %n = load i64, ptr @live
  call i32 @pthread_mutex_unlock(ptr @lock)
  ret i64 %n
}

define ptr @__ee_tls_address(ptr %block) nounwind {
entry:
  %idx = load atomic i64, ptr %block monotonic, align 8
  %k = load i32, ptr @key
  %t = call ptr @pthread_getspecific(i32 %k)
  %tn = icmp eq ptr %t, null
  br i1 %tn, label %slow, label %have
have:
  %capp = getelementptr %tbl, ptr %t, i32 0, i32 2
  %cap = load i64, ptr %capp
  %in = icmp ult i64 %idx, %cap
  br i1 %in, label %look, label %slow
look:
  %sp = getelementptr %tbl, ptr %t, i32 0, i32 3
  %slots = load ptr, ptr %sp
  %e = getelementptr ptr, ptr %slots, i64 %idx
  %p = load ptr, ptr %e
  %pn = icmp eq ptr %p, null
  br i1 %pn, label %slow, label %done
done:
  ret ptr %p
slow:
  %q = call ptr @slow(ptr %block)
  ret ptr %q
}

define internal ptr @slow(ptr %block) noinline nounwind {
entry:
  %pp = alloca ptr
  call i32 @pthread_mutex_lock(ptr @lock)
  %idx0 = load i64, ptr %block
  %un = icmp eq i64 %idx0, 0
  br i1 %un, label %assign, label %table
assign:
  %nf = load i64, ptr @free_count
  %hasfree = icmp ne i64 %nf, 0
  br i1 %hasfree, label %pop, label %fresh
pop:
  %nf1 = sub i64 %nf, 1
  store i64 %nf1, ptr @free_count
  %fa = load ptr, ptr @free_indices
  %fe = getelementptr i64, ptr %fa, i64 %nf1
  %fi = load i64, ptr %fe
  br label %assigned
fresh:
  %n = load i64, ptr @next_index
  %n1 = add i64 %n, 1
  store i64 %n1, ptr @next_index
  br label %assigned
assigned:
  %newidx = phi i64 [ %fi, %pop ], [ %n, %fresh ]
  store atomic i64 %newidx, ptr %block release, align 8
  br label %table
table:
  %idx = phi i64 [ %idx0, %entry ], [ %newidx, %assigned ]
  %k = load i32, ptr @key
  %t0 = call ptr @pthread_getspecific(i32 %k)
  %tn = icmp eq ptr %t0, null
  br i1 %tn, label %mktable, label %havetable
mktable:
  %t1 = call ptr @calloc(i64 1, i64 32)
  %t1n = icmp eq ptr %t1, null
  br i1 %t1n, label %oom, label %link
link:
  %h = load ptr, ptr @head
  store ptr %h, ptr %t1
  %hn = icmp eq ptr %h, null
  br i1 %hn, label %linked, label %setprev
setprev:
  %hp = getelementptr %tbl, ptr %h, i32 0, i32 1
  store ptr %t1, ptr %hp
  br label %linked
linked:
  store ptr %t1, ptr @head
  call i32 @pthread_setspecific(i32 %k, ptr %t1)
  br label %havetable
havetable:
  %t = phi ptr [ %t0, %table ], [ %t1, %linked ]
  %capp = getelementptr %tbl, ptr %t, i32 0, i32 2
  %sp = getelementptr %tbl, ptr %t, i32 0, i32 3
  %cap = load i64, ptr %capp
  %in = icmp ult i64 %idx, %cap
  br i1 %in, label %slot, label %grow
grow:
  %dbl = shl i64 %cap, 1
  %need = add i64 %idx, 1
  %bigger = icmp ugt i64 %dbl, %need
  %nc0 = select i1 %bigger, i64 %dbl, i64 %need
  %small = icmp ult i64 %nc0, 8
  %nc = select i1 %small, i64 8, i64 %nc0
  %old = load ptr, ptr %sp
  %bytes = shl i64 %nc, 3
  %ns = call ptr @realloc(ptr %old, i64 %bytes)
  %nsn = icmp eq ptr %ns, null
  br i1 %nsn, label %oom, label %grown
grown:
  %oldbytes = shl i64 %cap, 3
  %tail = getelementptr i8, ptr %ns, i64 %oldbytes
  %tailbytes = sub i64 %bytes, %oldbytes
  call void @llvm.memset.p0.i64(ptr %tail, i8 0, i64 %tailbytes, i1 false)
  store ptr %ns, ptr %sp
  store i64 %nc, ptr %capp
  br label %slot
slot:
  %slots = load ptr, ptr %sp
  %e = getelementptr ptr, ptr %slots, i64 %idx
  %p0 = load ptr, ptr %e
  %pn = icmp eq ptr %p0, null
  br i1 %pn, label %alloc, label %out
alloc:
  %sizep = getelementptr i64, ptr %block, i64 1
  %size = load i64, ptr %sizep
  %alignp = getelementptr i64, ptr %block, i64 2
  %align = load i64, ptr %alignp
  %offp = getelementptr i64, ptr %block, i64 3
  %off = load i64, ptr %offp
  %a16 = icmp ult i64 %align, 16
  %al = select i1 %a16, i64 16, i64 %align
  %sz0 = icmp eq i64 %size, 0
  %sz = select i1 %sz0, i64 1, i64 %size
  %rc = call i32 @posix_memalign(ptr %pp, i64 %al, i64 %sz)
  %failed = icmp ne i32 %rc, 0
  br i1 %failed, label %oom, label %copy
copy:
  %p1 = load ptr, ptr %pp
  %image = getelementptr i8, ptr %block, i64 %off
  call void @llvm.memcpy.p0.p0.i64(ptr %p1, ptr %image, i64 %size, i1 false)
  store ptr %p1, ptr %e
  %l0 = load i64, ptr @live
  %l1 = add i64 %l0, 1
  store i64 %l1, ptr @live
  br label %out
out:
  %p = phi ptr [ %p0, %slot ], [ %p1, %copy ]
  call i32 @pthread_mutex_unlock(ptr @lock)
  ret ptr %p
oom:
  call void @abort()
  unreachable
}

; Frees slot %idx of every thread's table; the caller holds the lock.
define internal void @free_everywhere(i64 %idx) nounwind {
entry:
  %h = load ptr, ptr @head
  br label %loop
loop:
  %t = phi ptr [ %h, %entry ], [ %nx, %next ]
  %tn = icmp eq ptr %t, null
  br i1 %tn, label %done, label %body
body:
  %capp = getelementptr %tbl, ptr %t, i32 0, i32 2
  %cap = load i64, ptr %capp
  %in = icmp ult i64 %idx, %cap
  br i1 %in, label %check, label %next
check:
  %sp = getelementptr %tbl, ptr %t, i32 0, i32 3
  %slots = load ptr, ptr %sp
  %e = getelementptr ptr, ptr %slots, i64 %idx
  %p = load ptr, ptr %e
  %pn = icmp eq ptr %p, null
  br i1 %pn, label %next, label %release
release:
  call void @free(ptr %p)
  store ptr null, ptr %e
  %l0 = load i64, ptr @live
  %l1 = sub i64 %l0, 1
  store i64 %l1, ptr @live
  br label %next
next:
  %nx = load ptr, ptr %t
  br label %loop
done:
  ret void
}

define void @__ee_tls_release_all(ptr %blocks, i64 %n) nounwind {
entry:
  call i32 @pthread_mutex_lock(ptr @lock)
  br label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %i1, %next ]
  %more = icmp ult i64 %i, %n
  br i1 %more, label %body, label %done
body:
  %bp = getelementptr ptr, ptr %blocks, i64 %i
  %block = load ptr, ptr %bp
  %idx = load i64, ptr %block
  %un = icmp eq i64 %idx, 0
  br i1 %un, label %next, label %used
used:
  call void @free_everywhere(i64 %idx)
  store atomic i64 0, ptr %block release, align 8
  %fc = load i64, ptr @free_count
  %fcap = load i64, ptr @free_capacity
  %full = icmp eq i64 %fc, %fcap
  br i1 %full, label %grow, label %push
grow:
  %dbl = shl i64 %fcap, 1
  %small = icmp ult i64 %dbl, 16
  %nc = select i1 %small, i64 16, i64 %dbl
  %old = load ptr, ptr @free_indices
  %bytes = shl i64 %nc, 3
  %ns = call ptr @realloc(ptr %old, i64 %bytes)
  %nsn = icmp eq ptr %ns, null
  br i1 %nsn, label %next, label %grown   ; the index is leaked, not reused
grown:
  store ptr %ns, ptr @free_indices
  store i64 %nc, ptr @free_capacity
  br label %push
push:
  %fa = load ptr, ptr @free_indices
  %fe = getelementptr i64, ptr %fa, i64 %fc
  store i64 %idx, ptr %fe
  %fc1 = add i64 %fc, 1
  store i64 %fc1, ptr @free_count
  br label %next
next:
  %i1 = add i64 %i, 1
  br label %loop
done:
  call i32 @pthread_mutex_unlock(ptr @lock)
  ret void
}

; The key's destructor: a thread ends; its table and copies go.
define internal void @thread_exit(ptr %t) nounwind {
entry:
  call i32 @pthread_mutex_lock(ptr @lock)
  %nx = load ptr, ptr %t
  %pvp = getelementptr %tbl, ptr %t, i32 0, i32 1
  %pv = load ptr, ptr %pvp
  %pvn = icmp eq ptr %pv, null
  br i1 %pvn, label %was_head, label %after_prev
was_head:
  store ptr %nx, ptr @head
  br label %fix_next
after_prev:
  store ptr %nx, ptr %pv
  br label %fix_next
fix_next:
  %nxn = icmp eq ptr %nx, null
  br i1 %nxn, label %free_slots, label %set_prev
set_prev:
  %np = getelementptr %tbl, ptr %nx, i32 0, i32 1
  store ptr %pv, ptr %np
  br label %free_slots
free_slots:
  %capp = getelementptr %tbl, ptr %t, i32 0, i32 2
  %cap = load i64, ptr %capp
  %sp = getelementptr %tbl, ptr %t, i32 0, i32 3
  %slots = load ptr, ptr %sp
  br label %loop
loop:
  %i = phi i64 [ 0, %free_slots ], [ %i1, %step ]
  %more = icmp ult i64 %i, %cap
  br i1 %more, label %body, label %done
body:
  %e = getelementptr ptr, ptr %slots, i64 %i
  %p = load ptr, ptr %e
  %pn = icmp eq ptr %p, null
  br i1 %pn, label %step, label %release
release:
  call void @free(ptr %p)
  %l0 = load i64, ptr @live
  %l1 = sub i64 %l0, 1
  store i64 %l1, ptr @live
  br label %step
step:
  %i1 = add i64 %i, 1
  br label %loop
done:
  call void @free(ptr %slots)
  call void @free(ptr %t)
  call i32 @pthread_mutex_unlock(ptr @lock)
  ret void
}
"""


class TlsRuntime:
    """The process's runtime, linked once (see the module docstring); its
    code lives as long as the process."""

    def __init__(self) -> None:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        self._jit = llvm.create_lljit_compiler()
        builder = llvm.JITLibraryBuilder().add_ir(_IR).export_symbol("__ee_tls_init")
        for name in sorted(NAMES):
            builder = builder.export_symbol(name)
        self._tracker = builder.link(self._jit, "execution_engine.tls_runtime")
        if ctypes.CFUNCTYPE(ctypes.c_int)(self._tracker["__ee_tls_init"])() != 0:
            raise OSError("pthread_key_create failed: no thread-local storage key left")
        self.addresses = {name: self._tracker[name] for name in NAMES}
        for name, address in self.addresses.items():
            llvm.add_symbol(name, address)
        self._live = ctypes.CFUNCTYPE(ctypes.c_int64)(self.addresses[LIVE_COPIES])
        self._release = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64)(
            self.addresses[RELEASE_ALL])

    def live_copies(self) -> int:
        """How many per-thread copies exist now, over all threads and engines."""
        return int(self._live())

    def release_all(self, blocks: int, count: int) -> None:
        """Free every thread's copy of the ``count`` variables whose control
        blocks' addresses are in the array at ``blocks``."""
        self._release(blocks, count)


_runtime: TlsRuntime | None = None
_lock = threading.Lock()


def runtime() -> TlsRuntime:
    """The process's runtime, linked on first use."""
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = TlsRuntime()
        return _runtime


def live_copies() -> int:
    """Per-thread copies of thread-local variables alive in this process."""
    return runtime().live_copies() if _runtime is not None else 0
