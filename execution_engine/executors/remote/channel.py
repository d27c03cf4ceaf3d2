"""One end of the host <-> executor socket, shared by threads.

Who reads the socket: one thread at a time holds the *reader baton*, reads
a frame and dispatches it (a reply settles its request, a request goes to
the side's ``on_request``) before reading the next, so requests are acted
on in arrival order. A thread waiting for a reply takes the baton itself
when it is free, so an exchange between two idle peers costs no thread
switch; when no thread waits, a *background reader*
(:meth:`SharedChannel.pump`, woken through a one-shot ``epoll``
registration only then) takes it, so the peer's requests are served at
any time. The frames are those of :mod:`.protocol`.
"""

from __future__ import annotations

import os
import select
import socket
import threading
import time
from typing import Any

from .protocol import (
    ERROR,
    REPLY,
    REQUEST,
    ChannelClosed,
    Handler,
    OnRequest,
    RemoteError,
    encode,
    receive,
)


class Pending:
    """Something a thread waits for with :meth:`SharedChannel.wait`: the
    reply to a request (:meth:`SharedChannel.start`) or a value another
    thread delivers (:meth:`SharedChannel.mailbox`)."""

    def __init__(self, ident: int = 0, op: str = ""):
        self.ident = ident
        self.op = op
        self.done = False
        self._expected = False  # counted among the channel's waiters
        self._value: Any = None
        self._error: Exception | None = None

    def result(self) -> Any:
        """The reply (``(header, payload)``) or delivered value; raises
        :class:`RemoteError` or :class:`ChannelClosed`. Only once ``done``."""
        assert self.done
        if self._error is not None:
            raise self._error
        return self._value


class SharedChannel:
    """One end of a connected socket, shared by threads.

    Thread-safety: every method may be called from any thread; frames are
    sent whole under a lock; one thread at a time reads (see the module
    docstring). ``on_request(ident, header, data)`` runs on whichever
    thread read the request, which may be a thread waiting for a reply: it
    must answer (:meth:`serve`) or hand the request on, and never wait for
    a reply itself.
    """

    def __init__(self, sock: socket.socket, on_request: OnRequest | None = None):
        self.sock = sock
        self.on_request = on_request
        self._send_lock = threading.Lock()
        self._cond = threading.Condition(threading.Lock())
        self._next_id = 1
        self._pending: dict[int, Pending] = {}
        self._closed: ChannelClosed | None = None
        self._reading = False  # the reader baton is taken
        self._reader = 0  # by this thread
        self._waiters = 0  # threads in (or about to enter) wait()
        self._epoll = select.epoll()
        self._registered = False  # the socket is in the background reader's epoll set
        self._wake_r, self._wake_w = os.pipe()  # wakes the background reader at the end
        self._epoll.register(self._wake_r, select.EPOLLIN)
        # Wakes a waiter that is reading when another thread settled its mailbox.
        self._poke_r, self._poke_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._rearm()

    @property
    def closed(self) -> bool:
        return self._closed is not None

    def shutdown(self) -> None:
        """Stop both directions: whoever reads sees the end; everything
        pending raises :class:`ChannelClosed`."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        """Release the socket and the poller (once no thread uses the channel)."""
        fds = (self._wake_r, self._wake_w, self._poke_r, self._poke_w)
        for release in (self.sock.close, self._epoll.close,
                        *(lambda fd=fd: os.close(fd) for fd in fds)):
            try:
                release()
            except OSError:
                pass

    def send(self, kind: int, ident: int, header: dict[str, Any], payload: bytes = b"") -> None:
        data = encode(kind, ident, header, payload)
        with self._send_lock:
            try:
                self.sock.sendall(data)
            except OSError as exc:
                raise ChannelClosed(str(exc)) from None

    # -- requests and waiting --------------------------------------------------

    def start(self, op: str, payload: bytes = b"", **fields: Any) -> Pending:
        """Send a request; wait for its reply with :meth:`wait`."""
        with self._cond:
            if self._closed is not None:
                raise ChannelClosed(str(self._closed))
            pending = Pending(self._next_id, op)
            self._next_id += 1
            self._pending[pending.ident] = pending
            self._expect(pending)  # before sending: the reply must not go to the background
        try:
            self.send(REQUEST, pending.ident, {"op": op, **fields}, payload)
        except ChannelClosed:
            with self._cond:
                self._pending.pop(pending.ident, None)
                self._unexpect(pending)
            raise
        return pending

    def request(self, op: str, payload: bytes = b"", **fields: Any) -> tuple[dict[str, Any], bytes]:
        """Send a request and wait for its reply (however long it takes)."""
        pending = self.start(op, payload, **fields)
        self.wait(pending)
        reply: tuple[dict[str, Any], bytes] = pending.result()
        return reply

    def forget(self, pending: Pending) -> None:
        """Done with ``pending``, answered or not (a late reply is dropped)."""
        with self._cond:
            self._pending.pop(pending.ident, None)
            self._unexpect(pending)

    def mailbox(self) -> Pending:
        """A Pending that :meth:`deliver` settles; the calling thread is about
        to :meth:`wait` for it (so it, not the background reader, reads what
        comes meanwhile)."""
        box = Pending()
        with self._cond:
            self._expect(box)
        return box

    def deliver(self, box: Pending, value: Any) -> None:
        with self._cond:
            self._settle(box, value, None)
            poke = self._reading and self._reader != threading.get_ident()
        if poke:  # the reader may be box's waiter, blocked on the socket
            try:
                os.write(self._poke_w, b"x")
            except OSError:
                pass  # already poked, or closed

    def serve(self, ident: int, header: dict[str, Any], data: bytes, handler: Handler) -> None:
        """Answer request ``ident`` with ``handler``'s result (or its exception)."""
        try:
            reply, payload = handler(header, data)
        except ChannelClosed:
            raise
        except Exception as exc:  # noqa: BLE001 - reported to the peer
            self.send(ERROR, ident, {"message": str(exc), "type": type(exc).__name__})
        else:
            self.send(REPLY, ident, reply, payload)

    def wait(self, pending: Pending, timeout: float | None = None) -> bool:
        """Wait until ``pending`` is done (True) or ``timeout`` seconds pass
        (False), reading and dispatching frames meanwhile whenever no other
        thread does. If the channel ends, ``pending`` is done with
        :class:`ChannelClosed`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._expect(pending)
        try:
            while True:
                with self._cond:
                    while True:
                        if not pending.done and self._closed is not None:
                            self._settle(pending, None, ChannelClosed(str(self._closed)))
                        if pending.done:
                            return True
                        remaining = None if deadline is None else deadline - time.monotonic()
                        if remaining is not None and remaining <= 0:
                            return False
                        if not self._reading:
                            self._reading, self._reader = True, threading.get_ident()
                            break
                        self._cond.wait(remaining)
                # A request's reply can only come through this thread now; a
                # mailbox may be settled by another (which pokes), or a deadline pass.
                must_poll = deadline is not None or pending.ident == 0
                try:
                    while not pending.done and self._closed is None:
                        ready = self._ready(deadline) if must_poll else True
                        if ready is None:
                            break  # timed out
                        if ready:
                            self._dispatch_one()
                finally:
                    with self._cond:
                        self._reading = False
                        self._cond.notify_all()
        finally:
            with self._cond:
                self._unexpect(pending)

    def pump(self) -> ChannelClosed:
        """The background reader: read whenever no thread is waiting, until
        the channel ends (returns why). Run by one thread."""
        while True:
            try:
                self._epoll.poll()
            except (OSError, ValueError):  # the channel was closed under it
                return self._closed or ChannelClosed("channel closed")
            with self._cond:
                if self._closed is not None:
                    return self._closed
                if self._reading or self._waiters:
                    continue  # a waiter reads (the socket fired once: the last waiter re-arms)
                self._reading, self._reader = True, threading.get_ident()
            try:
                self._dispatch_one()
            finally:
                with self._cond:
                    self._reading = False
                    self._cond.notify_all()
                    self._rearm()

    # -- the reader's work -------------------------------------------------------

    def _ready(self, deadline: float | None) -> bool | None:
        """Wait until a frame can be read (True), a poke came (False: look
        again) or the deadline passed (None)."""
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        sock = self.sock.fileno()
        try:
            ready, _, _ = select.select([sock, self._poke_r], [], [], remaining)
        except (OSError, ValueError):
            return True  # a closed socket: recv reports it
        if self._poke_r in ready:
            try:
                os.read(self._poke_r, 4096)
            except OSError:
                pass
        if sock in ready:
            return True
        return False if ready else None

    def _dispatch_one(self) -> None:
        """Read one frame and act on it (the caller holds the baton)."""
        try:
            kind, ident, header, data = receive(self.sock)
            if kind == REQUEST:
                if self.on_request is None:
                    self.send(ERROR, ident, {"message": f"cannot serve {header.get('op')!r}"})
                else:
                    self.on_request(ident, header, data)
                return
        except ChannelClosed as exc:
            self._end(exc)
            return
        except Exception as exc:  # noqa: BLE001 - a broken frame ends the channel
            self._end(ChannelClosed(f"protocol error: {exc!r}"))
            self.shutdown()
            return
        with self._cond:
            pending = self._pending.pop(ident, None)
            if pending is None:
                return  # its waiter gave up (a timeout)
            if kind == ERROR:
                self._settle(pending, None, RemoteError(header.get("message", "remote error"),
                                                        header.get("type", "RuntimeError")))
            else:
                self._settle(pending, (header, data), None)

    def _end(self, why: ChannelClosed) -> None:
        with self._cond:
            if self._closed is None:
                self._closed = why
            for pending in self._pending.values():
                self._settle(pending, None, ChannelClosed(str(why)))
            self._pending.clear()
            self._cond.notify_all()  # waiters for mailboxes see the end too
        try:
            os.write(self._wake_w, b"x")  # the background reader returns
        except OSError:
            pass

    # -- under the condition's lock ------------------------------------------------

    def _settle(self, pending: Pending, value: Any, error: Exception | None) -> None:
        if not pending.done:
            pending._value, pending._error, pending.done = value, error, True
            self._cond.notify_all()

    def _expect(self, pending: Pending) -> None:
        if not pending._expected:
            pending._expected = True
            self._waiters += 1
            self._disarm()

    def _unexpect(self, pending: Pending) -> None:
        if pending._expected:
            pending._expected = False
            self._waiters -= 1
            self._rearm()

    def _disarm(self) -> None:
        """A thread waits (and reads): the background reader must not wake."""
        if self._registered:
            try:
                self._epoll.unregister(self.sock.fileno())
            except (OSError, ValueError):
                pass
            self._registered = False

    def _rearm(self) -> None:
        """Let the background reader read the next frame, if nobody else will
        (one-shot: it wakes once, then a waiter or the reader re-arms)."""
        if self._waiters or self._reading or self._closed is not None:
            return
        events = select.EPOLLIN | select.EPOLLONESHOT
        try:
            if self._registered:
                self._epoll.modify(self.sock.fileno(), events)
            else:
                self._epoll.register(self.sock.fileno(), events)
                self._registered = True
        except (OSError, ValueError):
            pass  # the socket is gone: _end wakes the background reader
