"""The executor process: links the objects the host sends and runs code.

Started by the host as ``python -m execution_engine.executors.remote FD`` with one
end of a socket pair as file descriptor FD; stdin, stdout and stderr are the
host's. It keeps its own ObjectLinkingLayer, stubs and process symbols
(libc, libm, the C++ runtime are resolved here). A call through a stub
whose slot is unbound asks the host (``unbound`` request) which compiles
the function and links it here before answering; if the host cannot, the
executor reports the error and aborts - only itself.
"""

from __future__ import annotations

import ctypes
import functools
import os
import socket
import struct
import sys
from typing import Any

import llvmlite.binding as llvm

from ...errors import MemoryAccessError
from ...ir import signature
from ...layers.object_linking import LinkedResource, ObjectLinkingLayer
from ...linking.resolver import ProcessResolver
from ...native import memory
from ...native.c_runtime import restore_stdio_buffering
from ...native.pages import PAGE_SIZE
from ...native.stubs import StubManager
from ..local import call_in_process, run_main_in_process
from .protocol import VERSION, Channel, ChannelClosed, RemoteError


@functools.lru_cache(maxsize=512)
def _prototype(text: str) -> signature.Signature:
    """The fixed signature a ``call`` request names (as IR text)."""
    return signature.parse(text, "the called function")


class Executor:
    """Serves the host's requests (see :mod:`.protocol` for the framing)."""

    def __init__(self, channel: Channel):
        self.channel = channel
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        target_machine = llvm.Target.from_default_triple().create_target_machine(jit=True)
        self.linker = ObjectLinkingLayer(target_machine)
        self.stubs = StubManager(self._unbound)
        self.stub_chunks: list[int] = []
        self.process = ProcessResolver()
        self.resources: dict[int, LinkedResource] = {}
        self.next_resource = 1
        self.running = True

    def _unbound(self, stub: Any) -> int:
        try:
            reply, _ = self.channel.request("unbound", stub=stub.id)
        except RemoteError as exc:
            os.write(2, f"execution_engine executor: {exc}; aborting\n".encode())
            os.abort()
        return int(reply["address"])

    def handle(self, header: dict[str, Any], data: bytes) -> tuple[dict[str, Any], bytes]:
        op = header["op"]
        method = getattr(self, "op_" + op, None)
        if method is None:
            raise ValueError(f"unknown request {op!r}")
        result: tuple[dict[str, Any], bytes] = method(header, data)
        return result

    def op_hello(self, header: dict[str, Any], data: bytes) -> tuple[dict[str, Any], bytes]:
        if header.get("version") != VERSION:
            raise ValueError(f"protocol version {header.get('version')} != executor's {VERSION}")
        return {"version": VERSION, "pid": os.getpid(), "page_size": PAGE_SIZE}, b""

    def op_link(self, header: dict[str, Any], data: bytes) -> tuple[dict[str, Any], bytes]:
        objects, offset = [], 0
        for size in header["sizes"]:
            objects.append(data[offset: offset + size])
            offset += size
        resource = self.linker.add(objects, {k: int(v) for k, v in header["imports"].items()},
                                   header["exports"], name=header.get("name", ""))
        ident = self.next_resource
        self.next_resource += 1
        self.resources[ident] = resource
        return {"resource": ident, "exports": resource.exports}, b""

    def op_unlink(self, header: dict[str, Any], data: bytes) -> tuple[dict[str, Any], bytes]:
        self.linker.remove(self.resources.pop(header["resource"]))
        return {}, b""

    def op_stubs(self, header: dict[str, Any], data: bytes) -> tuple[dict[str, Any], bytes]:
        """Allocate whole chunks of stubs; the host knows their layout."""
        first = len(self.stubs)
        for i in range(header["count"]):
            self.stubs.allocate(f"stub{first + i}")
        return {"first": first, "chunk_bases": self.stubs.chunk_bases()}, b""

    def op_slots(self, header: dict[str, Any], data: bytes) -> tuple[dict[str, Any], bytes]:
        for slot, target in struct.iter_unpack("<QQ", data):
            ctypes.c_uint64.from_address(slot).value = target
        return {}, b""

    def op_resolve(self, header: dict[str, Any], data: bytes) -> tuple[dict[str, Any], bytes]:
        return {"addresses": [self.process(name) for name in header["names"]]}, b""

    def op_load_library(self, header: dict[str, Any], data: bytes) -> tuple[dict[str, Any], bytes]:
        llvm.load_library_permanently(header["path"])
        return {}, b""

    def op_copy(self, header: dict[str, Any], data: bytes) -> tuple[dict[str, Any], bytes]:
        ctypes.memmove(header["dst"], header["src"], header["size"])
        return {}, b""

    def op_near(self, header: dict[str, Any], data: bytes) -> tuple[dict[str, Any], bytes]:
        return {"address": self.linker.near_address()}, b""

    def op_read(self, header: dict[str, Any], data: bytes) -> tuple[dict[str, Any], bytes]:
        try:
            return {}, memory.read(header["address"], header["size"])
        except MemoryAccessError as exc:
            return {"unreadable": exc.unreadable}, b""

    def op_call(self, header: dict[str, Any], data: bytes) -> tuple[dict[str, Any], bytes]:
        result = call_in_process(header["address"], _prototype(header["signature"]),
                                 header["args"])
        return {"result": result}, b""

    def op_run_main(self, header: dict[str, Any], data: bytes) -> tuple[dict[str, Any], bytes]:
        status = run_main_in_process(header["address"], header["argv"], header["env"])
        ctypes.CDLL(None).fflush(None)
        return {"status": status}, b""

    def op_exit(self, header: dict[str, Any], data: bytes) -> tuple[dict[str, Any], bytes]:
        self.running = False
        return {}, b""

    def serve(self) -> None:
        while self.running:
            _, ident, header, data = self.channel.receive()
            self.channel.serve(ident, header, data)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    sock = socket.socket(fileno=int(argv[0]))
    channel = Channel(sock)
    executor = Executor(channel)
    channel.handler = executor.handle
    restore_stdio_buffering()
    try:
        executor.serve()
    except ChannelClosed:
        pass  # the host is gone: leave quietly
    # Leave through C exit(): stdio is flushed and the program's atexit
    # handlers run while its code is still mapped.
    ctypes.CDLL(None).exit(0)
    return 0
