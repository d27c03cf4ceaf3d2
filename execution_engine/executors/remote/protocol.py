"""The host <-> executor wire format.

A message is one frame::

    u32  length of the rest (little-endian)
    u8   kind: 0 request, 1 reply, 2 error reply
    u32  request id (a reply carries the id of its request)
    u32  length of the JSON header
    ...  JSON header: {"op": ..., other fields}   (UTF-8)
    ...  payload: raw bytes (object files, memory), possibly empty

Both sides may have several requests in flight at once, from several
threads (the host links a new body while a call is running; the executor's
running code asks the host to compile a function, possibly from several of
its threads), so replies are matched to their requests by id and may come
in any order (:class:`.channel.SharedChannel` does the matching; the plain
:class:`Channel` here serves a peer one exchange at a time, as the compile
service's workers need). The first exchange is a ``hello`` carrying
:data:`VERSION`; peers with different versions refuse each other.
"""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Callable
from typing import Any

VERSION = 3  # 2: calls carry their signature; reads report unreadable memory;
#             3: requests in flight from both sides at once, replies in any order
REQUEST, REPLY, ERROR = 0, 1, 2
_FRAME = struct.Struct("<IBII")

Handler = Callable[[dict[str, Any], bytes], "tuple[dict[str, Any], bytes]"]
OnRequest = Callable[[int, dict[str, Any], bytes], None]


class ChannelClosed(ConnectionError):
    """The peer went away (it exited or crashed)."""


class RemoteError(RuntimeError):
    """The peer failed to serve a request; the message is the peer's."""

    def __init__(self, message: str, kind: str = "RuntimeError"):
        super().__init__(message)
        self.kind = kind


def encode(kind: int, ident: int, header: dict[str, Any], payload: bytes = b"") -> bytes:
    """One whole frame."""
    head = json.dumps(header, separators=(",", ":")).encode()
    frame = _FRAME.pack(_FRAME.size - 4 + len(head) + len(payload), kind, ident, len(head))
    return frame + head + payload


def receive(sock: socket.socket) -> tuple[int, int, dict[str, Any], bytes]:
    """Read one whole frame: ``(kind, ident, header, payload)``; raises
    :class:`ChannelClosed` at the end of the stream."""
    length, kind, ident, head_len = _FRAME.unpack(_read(sock, _FRAME.size))
    body = _read(sock, length - (_FRAME.size - 4))
    header = json.loads(body[:head_len])
    return kind, ident, header, body[head_len:]


def _read(sock: socket.socket, n: int) -> bytes:
    chunks = []
    while n:
        try:
            chunk = sock.recv(min(n, 1 << 20))
        except TimeoutError:
            raise  # a socket timeout: the caller decides what it means
        except OSError as exc:
            raise ChannelClosed(str(exc)) from None
        if not chunk:
            raise ChannelClosed("peer closed the connection")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


class Channel:
    """One end of a connected socket for one thread at a time (not
    thread-safe): :meth:`request` waits for its reply, serving the peer's
    requests meanwhile with ``handler``. Socket timeouts raise TimeoutError."""

    def __init__(self, sock: socket.socket, handler: Handler | None = None):
        self.sock = sock
        self.handler = handler
        self._next_id = 1

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, kind: int, ident: int, header: dict[str, Any], payload: bytes = b"") -> None:
        try:
            self.sock.sendall(encode(kind, ident, header, payload))
        except OSError as exc:
            raise ChannelClosed(str(exc)) from None

    def receive(self) -> tuple[int, int, dict[str, Any], bytes]:
        return receive(self.sock)

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
