"""The remote protocol's SharedChannel on its own (a socket pair, no executor):
replies matched to requests by id in any order, requests from many threads
at once, requests served while nobody waits, mailboxes, timeouts, and the
end of the channel reaching every waiter."""

from __future__ import annotations

import random
import socket
import threading
import time

import pytest

from execution_engine.executors.remote.channel import SharedChannel
from execution_engine.executors.remote.protocol import ChannelClosed, RemoteError

LIVENESS = 60.0


class Peer:
    """The other end: answers ``echo`` requests (optionally holding them back
    to answer in reverse order), ``fail`` with an error; runs its own
    background reader."""

    def __init__(self, sock: socket.socket, *, hold: int = 0, serve_threads: bool = False):
        self.channel = SharedChannel(sock, self.on_request)
        self.hold = hold
        self.held: list[tuple[int, dict, bytes]] = []
        self.serve_threads = serve_threads
        self.reader = threading.Thread(target=self.channel.pump, daemon=True)
        self.reader.start()

    def on_request(self, ident, header, data):
        if header["op"] == "fail":
            self.channel.serve(ident, header, data, _fail)
        elif self.hold:
            self.held.append((ident, header, data))
            if len(self.held) == self.hold:
                for held in reversed(self.held):
                    self.channel.serve(*held, _echo)
                self.held.clear()
        elif self.serve_threads:
            threading.Thread(target=self._slow, args=(ident, header, data)).start()
        else:
            self.channel.serve(ident, header, data, _echo)

    def _slow(self, ident, header, data):
        time.sleep(random.random() * 0.002)
        self.channel.serve(ident, header, data, _echo)


def _echo(header, data):
    return {"value": header.get("value")}, data


def _fail(header, data):
    raise ValueError("refused")


@pytest.fixture
def pair():
    made = []

    def make(**peer_options):
        a, b = socket.socketpair()
        host = SharedChannel(a)
        pump = threading.Thread(target=host.pump, daemon=True)
        pump.start()
        peer = Peer(b, **peer_options)
        made.append((host, peer, pump))
        return host, peer

    yield make
    for host, peer, pump in made:
        host.shutdown()
        peer.channel.shutdown()
        pump.join(LIVENESS)
        peer.reader.join(LIVENESS)
        host.close()
        peer.channel.close()


def test_replies_are_matched_to_their_requests_in_any_order(pair):
    host, _ = pair(hold=4)
    pendings = [host.start("echo", bytes([i]), value=i) for i in range(4)]
    for i, pending in reversed(list(enumerate(pendings))):
        assert host.wait(pending, LIVENESS)
        assert pending.result() == ({"value": i}, bytes([i]))


def test_requests_from_many_threads_at_once_each_get_their_own_reply(pair):
    host, _ = pair(serve_threads=True)
    wrong: list[object] = []

    def client(n: int) -> None:
        for k in range(50):
            value = n * 1000 + k
            reply, payload = host.request("echo", str(value).encode(), value=value)
            if reply != {"value": value} or payload != str(value).encode():
                wrong.append((value, reply, payload))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(LIVENESS)
    assert not any(t.is_alive() for t in threads) and wrong == []


def test_a_request_is_served_while_nobody_waits_on_the_serving_side(pair):
    host, peer = pair()
    for value in range(20):  # the peer has no waiting thread: its background reader serves
        assert host.request("echo", value=value)[0] == {"value": value}
    host.on_request = lambda ident, header, data: host.serve(ident, header, data, _echo)
    assert peer.channel.request("echo", value=7)[0] == {"value": 7}


def test_an_error_reply_raises_remote_error(pair):
    host, _ = pair()
    with pytest.raises(RemoteError, match="refused") as info:
        host.request("fail")
    assert info.value.kind == "ValueError"
    assert host.request("echo", value=1)[0] == {"value": 1}  # the channel goes on


def test_a_timed_out_wait_leaves_the_request_pending(pair):
    host, _ = pair(hold=2)
    first = host.start("echo", value=1)
    assert not host.wait(first, 0.05)  # held back by the peer until a second request
    second = host.start("echo", value=2)
    assert host.wait(first, LIVENESS) and host.wait(second, LIVENESS)
    assert first.result()[0] == {"value": 1} and second.result()[0] == {"value": 2}


def test_a_mailbox_is_delivered_to_its_waiter(pair):
    host, _ = pair()
    box = host.mailbox()
    threading.Timer(0.05, host.deliver, args=(box, "job")).start()
    assert host.wait(box, LIVENESS) and box.result() == "job"


def test_the_end_of_the_channel_reaches_every_waiter(pair):
    host, peer = pair(hold=100)
    pendings = [host.start("echo", value=i) for i in range(3)]
    box = host.mailbox()
    outcomes: list[object] = []

    def wait_for(p) -> None:
        host.wait(p, LIVENESS)
        try:
            outcomes.append(p.result())
        except ChannelClosed as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=wait_for, args=(p,)) for p in (*pendings, box)]
    for t in threads:
        t.start()
    time.sleep(0.05)
    peer.channel.shutdown()
    for t in threads:
        t.join(LIVENESS)
    assert len(outcomes) == 4 and all(isinstance(o, ChannelClosed) for o in outcomes)
    with pytest.raises(ChannelClosed):
        host.start("echo")
