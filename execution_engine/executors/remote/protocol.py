"""The host <-> executor message protocol.

A message is one frame::

    u32  length of the rest (little-endian)
    u8   kind: 0 request, 1 reply, 2 error reply
    u32  request id (a reply carries the id of its request)
    u32  length of the JSON header
    ...  JSON header: {"op": ..., other fields}   (UTF-8)
    ...  payload: raw bytes (object files, memory), possibly empty

Either side may send requests while it waits for a reply (the executor asks
the host to compile a function while it is running the code that called
it), so :meth:`Channel.request` keeps serving incoming requests until its
own reply arrives. The first exchange is a ``hello`` carrying
:data:`VERSION`; peers with different versions refuse each other.
"""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Callable
from typing import Any

VERSION = 2  # 2: calls carry their signature; reads report unreadable memory
REQUEST, REPLY, ERROR = 0, 1, 2
_FRAME = struct.Struct("<IBII")

Handler = Callable[[dict[str, Any], bytes], "tuple[dict[str, Any], bytes]"]


class ChannelClosed(ConnectionError):
    """The peer went away (it exited or crashed)."""


class RemoteError(RuntimeError):
    """The peer failed to serve a request; the message is the peer's."""

    def __init__(self, message: str, kind: str = "RuntimeError"):
        super().__init__(message)
        self.kind = kind


class Channel:
    """One end of a connected socket. Not thread-safe: one thread talks at a time."""

    def __init__(self, sock: socket.socket, handler: Handler | None = None):
        self.sock = sock
        self.handler = handler
        self._next_id = 1

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    # -- framing -------------------------------------------------------------

    def send(self, kind: int, ident: int, header: dict[str, Any], payload: bytes = b"") -> None:
        head = json.dumps(header, separators=(",", ":")).encode()
        frame = _FRAME.pack(_FRAME.size - 4 + len(head) + len(payload), kind, ident, len(head))
        try:
            self.sock.sendall(frame + head + payload)
        except OSError as exc:
            raise ChannelClosed(str(exc)) from None

    def receive(self) -> tuple[int, int, dict[str, Any], bytes]:
        length, kind, ident, head_len = _FRAME.unpack(self._read(_FRAME.size))
        body = self._read(length - (_FRAME.size - 4))
        header = json.loads(body[:head_len])
        return kind, ident, header, body[head_len:]

    def _read(self, n: int) -> bytes:
        chunks = []
        while n:
            try:
                chunk = self.sock.recv(min(n, 1 << 20))
            except TimeoutError:
                raise  # the caller decides what a timeout means
            except OSError as exc:
                raise ChannelClosed(str(exc)) from None
            if not chunk:
                raise ChannelClosed("peer closed the connection")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    # -- requests ------------------------------------------------------------

    def request(self, op: str, payload: bytes = b"", **fields: Any) -> tuple[dict[str, Any], bytes]:
        """Send a request and return its reply, serving the peer's requests meanwhile."""
        ident = self._next_id
        self._next_id += 1
        self.send(REQUEST, ident, {"op": op, **fields}, payload)
        while True:
            kind, rid, header, data = self.receive()
            if kind == REQUEST:
                self.serve(rid, header, data)
            elif rid != ident:
                raise RemoteError(f"protocol error: reply {rid} while waiting for {ident}")
            elif kind == ERROR:
                raise RemoteError(header.get("message", "remote error"),
                                  header.get("type", "RuntimeError"))
            else:
                return header, data

    def serve(self, ident: int, header: dict[str, Any], data: bytes) -> None:
        """Answer one request with the handler's result (or its exception)."""
        if self.handler is None:
            self.send(ERROR, ident, {"message": f"cannot serve {header.get('op')!r}"})
            return
        try:
            reply, payload = self.handler(header, data)
        except ChannelClosed:
            raise
        except Exception as exc:  # noqa: BLE001 - reported to the peer
            self.send(ERROR, ident, {"message": str(exc), "type": type(exc).__name__})
        else:
            self.send(REPLY, ident, reply, payload)
