"""The compile worker process: IR in, relocatable object bytes out.

Started by :class:`~execution_engine.compile_service.pool.CompilePool` as
``python -m execution_engine.compile_service.worker FD`` (or through
:data:`.process.BOOTSTRAP`, which skips the package's imports) with one end of a
socket pair as file descriptor FD, and its stderr redirected to a file the
host reads (that is where LLVM writes its fatal errors). It speaks the framed
protocol of :mod:`execution_engine.executors.remote.protocol` and serves one request at
a time:

* ``hello`` {version} -> {pid, version, llvm}
* ``compile`` {spec, label, format: "ir"|"bitcode", verify, optimize} +
  module text (UTF-8) or bitcode -> {cpu: seconds it took} + object bytes. Each request is parsed
  into a fresh LLVM context that is freed afterwards, so a long-lived worker
  does not accumulate types; target machines are kept per spec.
  ``optimize`` (0-3 or null) runs the engine's optimisation pipeline for that
  level first (:mod:`execution_engine.ir.optimise`).
* ``exit`` -> {} and the worker exits.

Errors LLVM reports as errors become error replies (``InvalidModuleError`` for
IR that does not parse or verify, ``LLVMError`` for code generation); LLVM's fatal
errors end the process, which is what the host expects of them. The worker
also exits when the host closes the socket (or dies). It ignores SIGINT (the
host decides when workers end) and writes no core dumps (a dying worker must
go away at once).
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import sys
import time
from typing import Any

import llvmlite.binding as llvm

from ..errors import InvalidModuleError
from ..executors.remote.protocol import REPLY, VERSION, Channel, ChannelClosed
from ..ir.optimise import Optimiser
from ..target_spec import TargetSpec

_MACHINES_KEPT = 8


class LLVMError(RuntimeError):
    """LLVM reported an error (not a fatal one); the message is LLVM's."""


class Compiler:
    """Serves compile requests. Not thread-safe (a worker has one thread)."""

    def __init__(self) -> None:
        self._machines: dict[TargetSpec, tuple[llvm.TargetMachine, Optimiser]] = {}
        self._all_targets = False

    def handle(self, header: dict[str, Any], data: bytes) -> tuple[dict[str, Any], bytes]:
        op = header.get("op")
        if op == "hello":
            if header.get("version") != VERSION:
                raise RuntimeError(f"protocol version {header.get('version')} != {VERSION}")
            return {"pid": os.getpid(), "version": VERSION,
                    "llvm": list(llvm.llvm_version_info)}, b""
        if op == "compile":
            start = time.process_time()
            obj = self.compile(header, data)
            return {"cpu": time.process_time() - start}, obj
        raise RuntimeError(f"unknown request {op!r}")

    def compile(self, header: dict[str, Any], data: bytes) -> bytes:
        label = str(header.get("label", "module"))
        spec = TargetSpec.from_dict(header["spec"])
        machine, optimiser = self._machine(spec)
        context = llvm.create_context()
        module = None
        try:
            try:
                if header.get("format") == "bitcode":
                    module = llvm.parse_bitcode(data, context=context)
                else:
                    module = llvm.parse_assembly(data.decode(), context=context)
                if header.get("verify", True):
                    module.verify()
            except RuntimeError as exc:
                raise InvalidModuleError(f"{label}: {exc}") from None
            optimize = header.get("optimize")
            if optimize is not None:
                optimiser.run(module, int(optimize))
            try:
                return bytes(machine.emit_object(module))
            except RuntimeError as exc:
                raise LLVMError(str(exc)) from None
        finally:
            if module is not None:
                module.close()
            context.close()

    def _machine(self, spec: TargetSpec) -> tuple[llvm.TargetMachine, Optimiser]:
        found = self._machines.get(spec)
        if found is None:
            if not self._all_targets and spec.triple.split("-")[0] != (
                    llvm.get_process_triple().split("-")[0]):
                llvm.initialize_all_targets()
                llvm.initialize_all_asmprinters()
                self._all_targets = True
            if len(self._machines) >= _MACHINES_KEPT:
                oldest_machine, oldest_optimiser = self._machines.pop(next(iter(self._machines)))
                oldest_optimiser.close()
                oldest_machine.close()
            machine = spec.create()
            found = self._machines[spec] = (machine, Optimiser(machine))
        return found


def serve(channel: Channel) -> int:
    """Answer requests until ``exit`` or until the host goes away; the exit status."""
    compiler = Compiler()
    channel.handler = compiler.handle
    while True:
        try:
            kind, ident, header, data = channel.receive()
        except ChannelClosed:
            return 0
        if header.get("op") == "exit":
            try:
                channel.send(REPLY, ident, {})
            except ChannelClosed:
                pass
            return 0
        try:
            channel.serve(ident, header, data)
        except ChannelClosed:
            return 0


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not argv[1].isdigit():
        print("usage: python -m execution_engine.compile_service.worker FD", file=sys.stderr)
        return 2
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (OSError, ValueError):
        pass
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    llvm.initialize_native_asmparser()
    channel = Channel(socket.socket(fileno=int(argv[1])))
    status = serve(channel)
    channel.close()
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
