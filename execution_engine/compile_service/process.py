"""One compile worker process, seen from the host: start, one request at a time, death.

:class:`WorkerProcess` starts the worker module (:mod:`.worker`) in a new interpreter
with one end of a socket pair and its stderr in an unlinked temporary file
(opened for appending, so the host can truncate it between requests), waits
for the worker's greeting, and then exchanges one compile request at a time.
When the socket closes (the worker died) or a reply does not come within the
timeout (the worker is killed), :class:`WorkerDied` carries the exit status
and what the worker wrote to stderr since the request began: LLVM's message.
Output written during a successful request (LLVM's warnings) is copied to
this process's stderr.

Ownership: a WorkerProcess owns its process, socket and stderr file; ``stop``
or ``discard`` releases them. Not thread-safe: one thread uses it at a time
(the pool gives each to one slot thread).
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CompileError, InvalidModuleError
from ..executors.remote.protocol import (
    ERROR,
    REPLY,
    REQUEST,
    VERSION,
    Channel,
    ChannelClosed,
    RemoteError,
)

_HELLO_TIMEOUT = 60.0
_MESSAGE_LIMIT = 8000
_PACKAGE_DIR = Path(__file__).resolve().parents[1]
_PACKAGE_PARENT = str(_PACKAGE_DIR.parent)
# How a worker starts: ``python -c BOOTSTRAP FD``. The package's and the compile
# service's ``__init__`` modules import the whole engine (0.34 s of start-up
# measured, against 0.11 s for what a worker uses); the bootstrap registers
# both packages as bare namespaces of this very directory first, so the worker
# imports only its own modules (errors, protocol, optimiser, target specs).
BOOTSTRAP = (
    "import sys, types\n"
    "for name, path in (({!r}, {!r}), ({!r}, {!r})):\n"
    "    package = types.ModuleType(name)\n"
    "    package.__path__ = [path]\n"
    "    sys.modules[name] = package\n"
    "from execution_engine.compile_service.worker import main\n"
    "sys.exit(main(['worker', *sys.argv[1:]]))\n"
).format("execution_engine", str(_PACKAGE_DIR), "execution_engine.compile_service",
     str(_PACKAGE_DIR / "compile_service"))


@dataclass(frozen=True)
class WorkerStats:
    """A worker's process id, seconds from its start to its first answer, and the
    requests it answered with the CPU seconds they took (parse + compile)."""

    pid: int
    startup_seconds: float
    requests: int
    cpu_seconds: float


class WorkerDied(Exception):
    """The worker ended (or was killed) before answering: its exit status (None if
    not known yet), its stderr output since the request began, the timeout hit."""

    def __init__(self, status: int | None, output: str, timed_out: float | None = None):
        self.status, self.output, self.timed_out = status, output, timed_out

    def error(self, label: str) -> CompileError:
        if self.timed_out is not None:
            detail = f"no answer within {self.timed_out} s; the compile worker was killed"
        elif self.status is None:
            detail = "the compile worker died"
        elif self.status < 0:
            name = (signal.Signals(-self.status).name
                    if -self.status in signal.valid_signals() else "?")
            detail = f"the compile worker was killed by signal {-self.status} ({name})"
        else:
            detail = f"the compile worker exited with status {self.status}"
        return CompileError(label, self.output, self.status, detail=detail)


class WorkerProcess:
    """One worker process, its channel and its stderr file. Used by one slot thread."""

    def __init__(self, python: str):
        host_end, child_end = socket.socketpair()
        fd, path = tempfile.mkstemp(prefix="ee-compile-worker-", suffix=".stderr")
        os.unlink(path)
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_APPEND)
        self.stderr_fd = fd
        env = dict(os.environ)
        # the worker imports this very package, wherever the host found it
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (_PACKAGE_PARENT, env.get("PYTHONPATH", "")) if p)
        started = time.perf_counter()
        try:
            self.process = subprocess.Popen(
                [python, "-c", BOOTSTRAP, str(child_end.fileno())],
                pass_fds=[child_end.fileno()], stdin=subprocess.DEVNULL, stderr=fd,
                close_fds=True, env=env)
        except BaseException:
            host_end.close()
            os.close(fd)
            raise
        finally:
            child_end.close()
        self.channel = Channel(host_end)
        try:
            self.channel.sock.settimeout(_HELLO_TIMEOUT)
            self.channel.send(REQUEST, 0, {"op": "hello", "version": VERSION})
            kind, ident, header, _ = self.channel.receive()
            if kind != REPLY or ident != 0:
                raise ChannelClosed(header.get("message", "bad greeting"))
        except (ChannelClosed, TimeoutError) as exc:
            died = self._died(0, None if isinstance(exc, ChannelClosed) else _HELLO_TIMEOUT)
            self.discard()
            raise died from None
        self.pid = int(header["pid"])
        self.startup_seconds = time.perf_counter() - started
        self.requests = 0
        self.cpu_seconds = 0.0
        self._ident = 0

    def alive(self) -> bool:
        return self.process.poll() is None

    def compile(self, header: dict[str, Any], payload: bytes, label: str,
                timeout: float | None) -> bytes:
        offset = os.fstat(self.stderr_fd).st_size
        self._ident += 1
        try:
            self.channel.sock.settimeout(None)  # the timeout is the compile's, not the send's
            self.channel.send(REQUEST, self._ident, {"op": "compile", **header}, payload)
            self.channel.sock.settimeout(timeout)
            kind, ident, reply, data = self.channel.receive()
        except ChannelClosed:
            raise self._died(offset) from None
        except TimeoutError:
            self._kill()
            raise self._died(offset, timed_out=timeout) from None
        self._forward_stderr(offset)
        if ident != self._ident or kind not in (REPLY, ERROR):
            self._kill()
            raise self._died(offset)
        if kind == ERROR:
            message, error_type = str(reply.get("message", "")), reply.get("type")
            if error_type == "InvalidModuleError":
                raise InvalidModuleError(message)
            if error_type == "ValueError":
                raise ValueError(f"{label}: {message}")
            raise CompileError(label, message, detail="LLVM reported an error")
        self.requests += 1
        self.cpu_seconds += float(reply.get("cpu", 0.0))
        return data

    def _died(self, offset: int, timed_out: float | None = None) -> WorkerDied:
        status = self.process.poll()
        if status is None:
            try:  # its socket is closed: it is exiting; do not wait on it for long
                status = self.process.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                status = None
        return WorkerDied(status, self._stderr_since(offset), timed_out)

    def _stderr_since(self, offset: int) -> str:
        size = os.fstat(self.stderr_fd).st_size
        start = max(offset, size - 64 * 1024)
        text = os.pread(self.stderr_fd, size - start, start).decode(errors="replace")
        return llvm_message(text)

    def _forward_stderr(self, offset: int) -> None:
        size = os.fstat(self.stderr_fd).st_size
        if size <= offset:
            return
        text = os.pread(self.stderr_fd, size - offset, offset).decode(errors="replace")
        os.ftruncate(self.stderr_fd, 0)
        if sys.stderr is not None:
            sys.stderr.write(text)
            sys.stderr.flush()

    def _kill(self) -> None:
        try:
            self.process.kill()
        except ProcessLookupError:
            pass

    def stop(self, timeout: float = 2.0) -> None:
        """Ask the worker to exit; kill it if it does not within ``timeout``."""
        if self.alive():
            try:
                self.channel.sock.settimeout(timeout)
                self.channel.request("exit")
            except (ChannelClosed, TimeoutError, RemoteError, OSError):
                pass
        self.channel.close()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill()
            self.process.wait()
        self._close_stderr()

    def discard(self) -> None:
        """Forget a dead (or hopeless) worker without waiting for it."""
        self.channel.close()
        if self.process.poll() is None:
            self._kill()
            threading.Thread(target=self.process.wait, daemon=True).start()
        self._close_stderr()

    def _close_stderr(self) -> None:
        if self.stderr_fd >= 0:
            os.close(self.stderr_fd)
            self.stderr_fd = -1


def llvm_message(text: str) -> str:
    """LLVM's message in a dying worker's stderr, without LLVM's crash banner and
    stack dump (they follow the message)."""
    lines = []
    for line in text.splitlines():
        if line.startswith(("PLEASE submit a bug report", "Stack dump:")):
            break
        lines.append(line)
    message = "\n".join(lines).strip()
    return message if len(message) <= _MESSAGE_LIMIT else "..." + message[-_MESSAGE_LIMIT:]
