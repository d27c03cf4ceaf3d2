"""EventHub semantics: order, isolation of failing listeners, removal during
dispatch, re-entrant emission, threads; the event types themselves."""

from __future__ import annotations

import dataclasses
import threading
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from execution_engine.observe import (
    CodeFreed,
    CodeRange,
    EventHub,
    EventListenerWarning,
    ExecutorEvent,
    FunctionSwapped,
    LazyCompiled,
    ObjectLinked,
)


def swapped(i: int) -> FunctionSwapped:
    return FunctionSwapped(f"f{i}", i, i + 1)


def test_events_are_frozen_and_hashable():
    linked = ObjectLinked("module 'm'", (CodeRange("f", 0x1000, 16),), compile_seconds=0.5,
                          opt_level=2, cache_hit=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        linked.module = "other"  # type: ignore[misc]
    assert len({linked, ObjectLinked("module 'm'", (CodeRange("f", 0x1000, 16),),
                                     compile_seconds=0.5, opt_level=2, cache_hit=True)}) == 1
    assert CodeRange("f", 0x1000, 16).end == 0x1010
    assert {CodeFreed("m", ()), LazyCompiled("f", "m", 0.1), ExecutorEvent("crash", "SIGSEGV")}


def test_active_follows_listeners_and_remove_checks():
    hub = EventHub()
    assert not hub.active

    def listener(event):
        return None

    hub.add(listener)
    assert hub.active
    hub.remove(listener)
    assert not hub.active
    with pytest.raises(ValueError):
        hub.remove(listener)
    with pytest.raises(TypeError):
        hub.add(42)  # type: ignore[arg-type]


def test_events_reach_every_listener_in_order():
    hub = EventHub()
    seen: list[tuple[str, object]] = []
    hub.add(lambda e: seen.append(("a", e)))
    hub.add(lambda e: seen.append(("b", e)))
    events = [swapped(i) for i in range(5)]
    for e in events[:3]:
        hub.queue(e)
    assert seen == []  # queued events wait for the flush
    hub.flush()
    for e in events[3:]:
        hub.emit(e)
    assert seen == [(who, e) for e in events for who in ("a", "b")]


def test_a_failing_listener_is_reported_once_and_isolated():
    hub = EventHub()
    seen = []

    def broken(event):
        raise RuntimeError("listener bug")

    hub.add(broken)
    hub.add(seen.append)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(3):
            hub.emit(swapped(i))
    assert seen == [swapped(i) for i in range(3)]
    reports = [w for w in caught if issubclass(w.category, EventListenerWarning)]
    assert len(reports) == 1
    assert "listener bug" in str(reports[0].message)
    assert hub.failures == 3
    assert hub.listeners == (broken, seen.append)


def test_warnings_as_errors_still_do_not_escape():
    hub = EventHub()
    hub.add(lambda e: 1 / 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hub.emit(swapped(0))  # must not raise
    assert hub.failures == 1


def test_base_exception_propagates_but_leaves_the_hub_usable():
    hub = EventHub()
    seen = []

    def interrupt(event):
        if event.name == "f0":
            raise KeyboardInterrupt

    hub.add(interrupt)
    hub.add(seen.append)
    hub.queue(swapped(0))
    hub.queue(swapped(1))
    with pytest.raises(KeyboardInterrupt):
        hub.flush()
    hub.flush()  # the rest of the queue is still delivered
    assert seen == [swapped(1)]


def test_listener_removed_during_dispatch_gets_nothing_more():
    hub = EventHub()
    seen = []

    def second(event):
        seen.append(event)

    def first(event):
        hub.remove(second)
        hub.remove(first)

    hub.add(first)
    hub.add(second)
    hub.emit(swapped(0))
    hub.emit(swapped(1))
    assert seen == []
    assert not hub.active


def test_listener_added_during_dispatch_sees_later_events():
    hub = EventHub()
    late = []

    def adder(event):
        if event.name == "f0":
            hub.add(late.append)

    hub.add(adder)
    hub.emit(swapped(0))
    hub.emit(swapped(1))
    assert late == [swapped(1)]


def test_events_emitted_by_a_listener_follow_the_current_one():
    hub = EventHub()
    order = []

    def a(event):
        order.append(("a", event.name))
        if event.name == "f0":
            hub.emit(swapped(9))  # re-entrant: delivered after f0 reached everyone

    hub.add(a)
    hub.add(lambda e: order.append(("b", e.name)))
    hub.emit(swapped(0))
    assert order == [("a", "f0"), ("b", "f0"), ("a", "f9"), ("b", "f9")]


def test_listeners_run_outside_the_callers_lock():
    """The engine's pattern: queue under the lock, flush after releasing it."""
    hub = EventHub()
    engine_lock = threading.Lock()
    free = []
    hub.add(lambda e: free.append(engine_lock.acquire(blocking=False)
                                  and (engine_lock.release() or True)))
    with engine_lock:
        hub.queue(swapped(0))
    hub.flush()
    assert free == [True]


def test_threads_every_event_once_per_thread_order_never_concurrently():
    hub = EventHub()
    seen: list[FunctionSwapped] = []
    busy = threading.Lock()
    overlaps = []

    def listener(event):
        if not busy.acquire(blocking=False):
            overlaps.append(event)
            return
        try:
            seen.append(event)
        finally:
            busy.release()

    hub.add(listener)
    threads_n, per_thread = 4, 500
    barrier = threading.Barrier(threads_n)

    def work(t: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            hub.emit(FunctionSwapped(f"t{t}", i, 0))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    hub.flush()
    assert overlaps == []
    assert len(seen) == threads_n * per_thread
    for t in range(threads_n):
        assert [e.old_body for e in seen if e.name == f"t{t}"] == list(range(per_thread))


def test_add_and_remove_from_threads_while_emitting():
    hub = EventHub()
    stop = threading.Event()
    counts = [0]
    hub.add(lambda e: counts.__setitem__(0, counts[0] + 1))

    def churn() -> None:
        while not stop.is_set():
            def listener(event):
                return None

            hub.add(listener)
            hub.remove(listener)

    churner = threading.Thread(target=churn)
    churner.start()
    try:
        for i in range(2000):
            hub.emit(swapped(i))
    finally:
        stop.set()
        churner.join()
    assert counts[0] == 2000
    assert len(hub.listeners) == 1


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=20))
def test_any_mix_of_failing_listeners_keeps_order(plan):
    """Each event goes through a raising and a recording listener in turn;
    the recording ones always see the whole sequence, in order."""
    hub = EventHub()
    seen_a: list[int] = []
    seen_b: list[int] = []
    fails = {}

    def maker(record, key):
        def listener(event):
            if fails[event.old_body][key]:
                raise ValueError(key)
            record.append(event.old_body)
        return listener

    hub.add(maker(seen_a, 0))
    hub.add(maker(seen_b, 1))
    for i, flags in enumerate(plan):
        fails[i] = flags
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(len(plan)):
            hub.queue(swapped(i))
        hub.flush()
    assert seen_a == [i for i, f in enumerate(plan) if not f[0]]
    assert seen_b == [i for i, f in enumerate(plan) if not f[1]]
    assert hub.failures == sum(a + b for a, b in plan)
