"""The executor process: links the objects the host sends and runs code.

Started by the host as ``python -m execution_engine.executors.remote FD`` with one
end of a socket pair as file descriptor FD; stdin, stdout and stderr are the
host's. It keeps its own ObjectLinkingLayer, stubs and process symbols
(libc, libm, the C++ runtime are resolved here).

Threads: one thread at a time reads the socket (see :mod:`.channel`): the
*main thread* while it is idle, else the *service thread* (the channel's
background reader), or a thread waiting for the host's answer to its own
request. Whichever reads a request that does not run code (link, unlink,
stubs, slots, copy, resolve, read, load_library) serves it before reading
the next, so requests are served one at a time in arrival order and a slot
write always takes effect before any later request (an unlink of the body
it replaced, a call). ``call`` and ``run_main`` run on the main thread, or
on a thread of their own if the main thread is already running code;
meanwhile the service thread serves the host, which is what lets a running
program be hot-swapped.

A call through a stub whose slot is unbound asks the host (``unbound``
request, from whichever thread made the call) which compiles the function
and links it here before answering; if the host cannot, the executor
reports the error and aborts - only itself.

Leaving: on ``exit``, or when the host goes away, the executor leaves
through C ``exit()`` from the main thread (stdio flushed, the program's
atexit handlers run while its code is mapped); if code is still running
then (the host closed the engine during a call), it flushes stdio and
leaves at once without running atexit handlers under the running code.
"""

from __future__ import annotations

import ctypes
import functools
import os
import socket
import struct
import sys
import threading
from typing import Any, NoReturn

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
from .channel import Pending, SharedChannel
from .protocol import ERROR, REPLY, VERSION, ChannelClosed, RemoteError


@functools.lru_cache(maxsize=512)
def _prototype(text: str) -> signature.Signature:
    """The fixed signature a ``call`` request names (as IR text)."""
    return signature.parse(text, "the called function")


_RUNS_CODE = frozenset({"call", "run_main"})

Job = tuple[int, dict[str, Any], bytes]


class Executor:
    """Serves the host's requests (see :mod:`.protocol` for the framing).

    Thread-safety: the linker, the resource table and the stubs are guarded
    by ``_lock``, since requests are served on whichever thread reads them;
    reading one frame at a time is what orders slot writes."""

    def __init__(self, channel: SharedChannel):
        self.channel = channel
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        target_machine = llvm.Target.from_default_triple().create_target_machine(jit=True)
        self._lock = threading.RLock()
        self.linker = ObjectLinkingLayer(target_machine)
        self.stubs = StubManager(self._unbound)
        self.process = ProcessResolver()
        self.resources: dict[int, LinkedResource] = {}
        self.next_resource = 1
        self._runners = threading.Lock()  # guards the three fields below
        # Where the idle main thread waits for its next call (None: it is running one).
        self._main_box: Pending | None = channel.mailbox()
        self._running = 0  # calls running now, on any thread
        self._leaving = False

    # -- what JIT'd code asks of the host ------------------------------------

    def _unbound(self, stub: Any) -> int:
        """A call reached an unbound stub (on the calling thread, never the
        service thread): the host compiles it and answers with its body."""
        try:
            reply, _ = self.channel.request("unbound", stub=stub.id)
        except RemoteError as exc:
            os.write(2, f"execution_engine executor: {exc}; aborting\n".encode())
            os.abort()
        except ChannelClosed:
            _leave_now()
        return int(reply["address"])

    # -- dispatch (on the thread that read the request) -----------------------

    def on_request(self, ident: int, header: dict[str, Any], data: bytes) -> None:
        op = header.get("op")
        if op in _RUNS_CODE:
            with self._runners:
                self._running += 1
                box, self._main_box = self._main_box, None
            if box is not None:
                self.channel.deliver(box, (ident, header, data))
            else:
                threading.Thread(target=self._run, args=((ident, header, data), False),
                                 name=f"executor-{op}", daemon=True).start()
            return
        self.channel.serve(ident, header, data, self.handle)
        if op == "exit":
            self._leave()

    def service(self) -> None:
        """The service thread: serve until the host says exit or goes away."""
        self.channel.pump()
        self._leave()

    def _leave(self) -> None:
        with self._runners:
            if self._leaving:
                return
            self._leaving = True
            busy, box = self._running > 0, self._main_box
        if busy or box is None:
            _leave_now()
        self.channel.deliver(box, None)

    # -- running code ----------------------------------------------------------

    def run_jobs(self) -> None:
        """The main thread: run calls until the executor leaves. While idle it
        reads the socket itself (a call it reads runs at once, no thread
        switch), unless another thread does."""
        box = self._main_box
        assert box is not None
        while True:
            self.channel.wait(box)
            try:
                job = box.result()
            except ChannelClosed:
                return
            if job is None:
                return
            box = self._run(job, True)

    def _run(self, job: Job, on_main: bool) -> Pending:
        """Run a call and answer it; on the main thread, returns the mailbox
        it waits at next."""
        ident, header, data = job
        try:
            kind, reply, payload = REPLY, *self.handle(header, data)
        except Exception as exc:  # noqa: BLE001 - reported to the host
            kind, reply, payload = ERROR, {"message": str(exc), "type": type(exc).__name__}, b""
        box = self.channel.mailbox() if on_main else Pending()
        with self._runners:
            self._running -= 1
            if on_main:  # before the reply: the host's next call runs here
                self._main_box = box
        try:
            self.channel.send(kind, ident, reply, payload)
        except ChannelClosed:
            pass  # the host is gone; whoever reads sees it too
        return box

    # -- requests ------------------------------------------------------------

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
        with self._lock:
            resource = self.linker.add(objects, {k: int(v) for k, v in header["imports"].items()},
                                       header["exports"], name=header.get("name", ""))
            ident = self.next_resource
            self.next_resource += 1
            self.resources[ident] = resource
        return {"resource": ident, "exports": resource.exports}, b""

    def op_unlink(self, header: dict[str, Any], data: bytes) -> tuple[dict[str, Any], bytes]:
        with self._lock:
            self.linker.remove(self.resources.pop(header["resource"]))
        return {}, b""

    def op_stubs(self, header: dict[str, Any], data: bytes) -> tuple[dict[str, Any], bytes]:
        """Allocate whole chunks of stubs; the host knows their layout."""
        with self._lock:
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
        return {}, b""


def _leave_now() -> NoReturn:
    """Leave while code may still be running: flush C stdio, skip atexit."""
    ctypes.CDLL(None).fflush(None)
    os._exit(0)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    channel = SharedChannel(socket.socket(fileno=int(argv[0])))
    executor = Executor(channel)
    channel.on_request = executor.on_request
    restore_stdio_buffering()
    threading.Thread(target=executor.service, name="executor-service", daemon=True).start()
    executor.run_jobs()
    # Leave through C exit(): stdio is flushed and the program's atexit
    # handlers run while its code is still mapped.
    ctypes.CDLL(None).exit(0)
    return 0
