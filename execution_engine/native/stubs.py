"""Indirect stubs and pointer slots, written as x86-64 machine code.

Every function the engine defines is reached through a *stub*, an 8-byte
``jmp *slot(%rip)``, whose *pointer slot* lives in a data page. The stub's
address is what callers receive and never changes; re-pointing the slot (one
aligned 8-byte store) redirects every caller at once, on every thread,
without writing to code pages.

A slot that has no body yet points at its stub's *trampoline*
(``push id; jmp resolver``). The resolver saves every argument register,
calls the Python ``on_unbound(stub)`` handler with the GIL held, stores the
address the handler returns into the stack slot of the pushed id, restores
the registers and returns into that address: the original call then
proceeds with its original arguments. That one mechanism serves lazy
compilation (the handler compiles the body) and removed functions (the
handler reports the function's name and aborts instead of jumping into
freed memory).

Layout of one chunk (5 pages, 512 stubs)::

    page 0     stubs        r-x   8 bytes each: FF 25 rel32 CC CC
    page 1     slots        rw-   8 bytes each
    pages 2-3  trampolines  r-x   16 bytes each: 68 imm32; E9 rel32
    page 4     resolver     r-x

Stubs, slots and trampolines are never freed before the manager is closed:
a stale pointer to a removed function must keep reaching the resolver.
Thread-safety: all methods may be called from any thread; allocation and
binding are serialised by the manager's lock, and slot loads by running
code are atomic (aligned 8-byte stores).
"""

from __future__ import annotations

import ctypes
import struct
import sys
import threading
from collections.abc import Callable
from typing import Any

from .pages import PAGE_SIZE, PROT_EXEC, PROT_READ, PageBlock

STUBS_PER_CHUNK = PAGE_SIZE // 8
_STUB_SIZE = 8
_TRAMPOLINE_SIZE = 16
_SLOTS_OFFSET = PAGE_SIZE
_TRAMPOLINES_OFFSET = 2 * PAGE_SIZE
_RESOLVER_OFFSET = 4 * PAGE_SIZE
_CHUNK_PAGES = 5

_RESOLVER_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_uint64)


def _resolver_code(callback: int) -> bytes:
    """Save argument registers, call ``callback(id)``, continue at its result."""
    save_xmm = b"".join(bytes([0xF3, 0x0F, 0x7F, 0x44 | (n << 3), 0x24, 16 * n]) for n in range(8))
    load_xmm = b"".join(bytes([0xF3, 0x0F, 0x6F, 0x44 | (n << 3), 0x24, 16 * n]) for n in range(8))
    return b"".join(
        [
            b"\x55",  # push rbp
            b"\x48\x89\xe5",  # mov rbp, rsp
            b"\x50\x57\x56\x52\x51\x41\x50\x41\x51\x41\x52",  # push rax rdi rsi rdx rcx r8 r9 r10
            b"\x48\x81\xec\x88\x00\x00\x00",  # sub rsp, 0x88 (xmm0-7 + keep 16-byte alignment)
            save_xmm,
            b"\x48\x8b\x7d\x08",  # mov rdi, [rbp+8]   (the id pushed by the trampoline)
            b"\x48\xb8" + struct.pack("<Q", callback),  # movabs rax, callback
            b"\xff\xd0",  # call rax
            b"\x48\x89\x45\x08",  # mov [rbp+8], rax   (continue there on ret)
            load_xmm,
            b"\x48\x81\xc4\x88\x00\x00\x00",  # add rsp, 0x88
            b"\x41\x5a\x41\x59\x41\x58\x59\x5a\x5e\x5f\x58",  # pop r10 r9 r8 rcx rdx rsi rdi rax
            b"\x5d",  # pop rbp
            b"\xc3",  # ret
        ]
    )


class Stub:
    """One stub: its callable address, its slot's address, and its name.

    Compact (a REPL may create one per name it ever sees): the id, the name
    and the chunk base; the addresses follow from the chunk layout above.
    """

    __slots__ = ("id", "name", "_base", "manager")

    def __init__(self, stub_id: int, name: str, chunk_base: int, manager: Any):
        self.id = stub_id
        self.name = name
        self._base = chunk_base
        self.manager = manager

    @property
    def address(self) -> int:
        return self._base + (self.id % STUBS_PER_CHUNK) * _STUB_SIZE

    @property
    def slot(self) -> int:
        return self._base + _SLOTS_OFFSET + (self.id % STUBS_PER_CHUNK) * 8

    @property
    def trampoline(self) -> int:
        return self._base + _TRAMPOLINES_OFFSET + (self.id % STUBS_PER_CHUNK) * _TRAMPOLINE_SIZE

    def target(self) -> int:
        """The address the slot currently holds."""
        return int(self.manager.target_of(self))

    def is_bound(self) -> bool:
        return self.target() != self.trampoline

    def __repr__(self) -> str:
        return f"<Stub {self.id} {self.name!r} at {self.address:#x}>"


class StubManager:
    """Allocates stubs and points their slots.

    ``on_unbound(stub)`` is called (on the thread that made the call, GIL
    held) when code calls a stub whose slot is unbound; it must return the
    address to continue at. It must not raise: an exception is reported on
    stderr and the process aborts, because there is no safe way to unwind
    through the JIT'd caller.
    """

    def __init__(self, on_unbound: Callable[[Stub], int]):
        self._on_unbound = on_unbound
        self._lock = threading.Lock()
        self._chunks: list[PageBlock] = []
        self._stubs: list[Stub] = []
        self._callback = _RESOLVER_CALLBACK(self._resolve)
        self._callback_address = ctypes.cast(self._callback, ctypes.c_void_p).value or 0

    def __len__(self) -> int:
        return len(self._stubs)

    def allocate(self, name: str) -> Stub:
        """A new stub for ``name`` whose slot is unbound."""
        with self._lock:
            if len(self._stubs) % STUBS_PER_CHUNK == 0:
                self._chunks.append(self._new_chunk())
            stub = Stub(len(self._stubs), name, self._chunks[-1].address, self)
            self._stubs.append(stub)
        return stub  # its slot holds its trampoline since the chunk was made

    def bind(self, stub: Stub, target: int) -> None:
        """Point ``stub`` at ``target``; every later call through it goes there."""
        ctypes.c_uint64.from_address(stub.slot).value = target

    def unbind(self, stub: Stub) -> None:
        """Route the next call through ``stub`` to ``on_unbound``."""
        ctypes.c_uint64.from_address(stub.slot).value = stub.trampoline

    def flush(self) -> None:
        """Nothing to do: a bind is a store into the slot, seen by every thread."""

    @staticmethod
    def target_of(stub: Stub) -> int:
        """What ``stub``'s slot holds now."""
        return ctypes.c_uint64.from_address(stub.slot).value

    def chunk_bases(self) -> list[int]:
        """Base addresses of the chunks, in allocation order (see the layout above)."""
        with self._lock:
            return [chunk.address for chunk in self._chunks]

    def close(self) -> None:
        """Unmap every chunk. No code may run through any stub afterwards."""
        with self._lock:
            for chunk in self._chunks:
                chunk.release()
            self._chunks.clear()
            self._stubs.clear()

    def _new_chunk(self) -> PageBlock:
        block = PageBlock(_CHUNK_PAGES)
        stubs = bytearray()
        trampolines = bytearray()
        for i in range(STUBS_PER_CHUNK):
            stub_at = i * _STUB_SIZE
            stubs += b"\xff\x25" + struct.pack("<i", _SLOTS_OFFSET + 8 * i - (stub_at + 6))
            stubs += b"\xcc\xcc"
            tramp_at = _TRAMPOLINES_OFFSET + i * _TRAMPOLINE_SIZE
            stub_id = len(self._stubs) + i
            trampolines += b"\x68" + struct.pack("<i", stub_id)
            trampolines += b"\xe9" + struct.pack("<i", _RESOLVER_OFFSET - (tramp_at + 10))
            trampolines += b"\xcc" * 6
        block.write(0, bytes(stubs))
        block.write(_SLOTS_OFFSET, struct.pack(  # every slot unbound: at its trampoline
            f"<{STUBS_PER_CHUNK}Q", *(block.address + _TRAMPOLINES_OFFSET + i * _TRAMPOLINE_SIZE
                                      for i in range(STUBS_PER_CHUNK))))
        block.write(_TRAMPOLINES_OFFSET, bytes(trampolines))
        block.write(_RESOLVER_OFFSET, _resolver_code(self._callback_address))
        block.protect(0, PAGE_SIZE, PROT_READ | PROT_EXEC)
        block.protect(_TRAMPOLINES_OFFSET, 3 * PAGE_SIZE, PROT_READ | PROT_EXEC)
        return block

    def _resolve(self, stub_id: int) -> int:
        try:
            stub = self._stubs[stub_id]
            return self._on_unbound(stub)
        except BaseException as exc:  # noqa: BLE001 - nothing can unwind through JIT'd frames
            sys.stderr.write(f"execution_engine: fatal error in stub resolver: {exc!r}\n")
            sys.stderr.flush()
            import os

            os.abort()
