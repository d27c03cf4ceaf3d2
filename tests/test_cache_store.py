"""ObjectStore: verified entries, LRU bound, degradation, processes, and ``cache info|clear``."""

from __future__ import annotations

import errno
import os
import random
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from execution_engine import CacheUnavailableWarning
from execution_engine.cache import CachingCompiler, ObjectStore, object_key
from execution_engine.cache import store as store_module
from execution_engine.cache.cli import ENV_VAR, default_cache_dir, resolve_cache_dir
from execution_engine.cache.entry import HEADER_SIZE, encode_entry, read_entry
from execution_engine.cache.stats import RUNS_KEPT, read_runs

REPO = Path(__file__).resolve().parent.parent


def key_of(name: str) -> str:
    return object_key(name, "test-target")


def payload_of(key: str, size: int = 200) -> bytes:
    """Deterministic bytes for ``key``: what a correct read must return."""
    rng = random.Random(key)
    return bytes(rng.randrange(256) for _ in range(size))


def entry_path(store: ObjectStore, key: str) -> Path:
    return store.directory / "v1" / key[:2] / key


def no_warnings():
    return warnings.catch_warnings(record=True)


# -- round trip ------------------------------------------------------------------------


def test_put_then_get_returns_the_payload(tmp_path):
    store = ObjectStore(tmp_path)
    key = key_of("a")
    assert store.get(key) is None
    assert store.put(key, b"object bytes")
    assert store.get(key) == b"object bytes"
    assert entry_path(store, key).stat().st_size == HEADER_SIZE + len(b"object bytes")
    assert (store.stats().hits, store.stats().misses, store.stats().stores) == (1, 1, 1)
    assert ObjectStore(tmp_path).get(key) == b"object bytes"  # another store, same directory


def test_an_empty_payload_round_trips(tmp_path):
    store = ObjectStore(tmp_path)
    assert store.put(key_of("empty"), b"")
    assert store.get(key_of("empty")) == b""


def test_keys_must_be_keys(tmp_path):
    store = ObjectStore(tmp_path)
    for bad in ("", "../../etc/passwd", "A" * 64, key_of("x")[:-1]):
        with pytest.raises(ValueError):
            store.get(bad)
        with pytest.raises(ValueError):
            store.put(bad, b"x")


# -- corruption ------------------------------------------------------------------------

# Offset classes of an entry: (name, first offset, end offset) relative to the entry,
# the payload spans [HEADER_SIZE, size).
def offset_classes(size: int) -> list[tuple[str, int, int]]:
    return [("magic", 0, 8), ("version", 8, 12), ("key", 12, 76), ("length", 76, 84),
            ("digest", 84, 116), ("payload", HEADER_SIZE, size - 1), ("tail", size - 1, size)]


def mutations(entry: bytes, rng: random.Random):
    """(description, mutated bytes): bit flips and truncations in every offset
    class, plus extensions past the tail."""
    for name, lo, hi in offset_classes(len(entry)):
        if lo >= hi:
            continue  # a one-byte payload is all tail
        for offset in sorted({lo, hi - 1, rng.randrange(lo, hi)}):
            for bit in (0, 7, rng.randrange(8)):
                flipped = bytearray(entry)
                flipped[offset] ^= 1 << bit
                yield f"flip {name}@{offset} bit {bit}", bytes(flipped)
            yield f"truncate {name}@{offset}", entry[:offset]
    yield "extend by one byte", entry + b"\0"
    yield "extend by a block", entry + bytes(4096)


def test_every_corrupted_entry_is_detected_removed_and_recompiled(tmp_path):
    store = ObjectStore(tmp_path)
    caching = CachingCompiler(lambda module: b"", store, "test-target")
    rng = random.Random(14)
    tried = compiles = 0
    classes: dict[str, int] = {}
    for i in range(20):
        ir = f"entry {i}"
        key = key_of(ir)  # the key CachingCompiler computes for ir
        payload = payload_of(key, rng.choice((1, 2, 37, 300, 1000)))
        good = encode_entry(key, payload)
        path = entry_path(store, key)
        path.parent.mkdir(parents=True, exist_ok=True)

        def compile(payload: bytes = payload) -> bytes:
            nonlocal compiles
            compiles += 1
            return payload

        for description, bad in mutations(good, rng):
            assert bad != good, description
            path.write_bytes(bad)
            tried += 1
            kind = description.split("@")[0]
            classes[kind] = classes.get(kind, 0) + 1
            assert store.get(key) is None, description
            assert not path.exists(), f"{description}: corrupt entry left in place"
            path.write_bytes(bad)
            assert caching.get_or_compile(ir, compile) == payload, description
            assert path.read_bytes() == good, description  # recompiled and stored again
    assert tried >= 1000
    assert store.stats().corrupt == 2 * tried  # every one, both times
    assert compiles == tried
    for field in ("magic", "version", "key", "length", "digest", "payload", "tail"):
        assert classes[f"flip {field}"] >= 20 and classes[f"truncate {field}"] >= 10, field


def test_zero_length_and_foreign_files_are_misses_and_removed(tmp_path):
    store = ObjectStore(tmp_path)
    a, b = key_of("a"), key_of("b")
    path = entry_path(store, a)
    path.parent.mkdir(parents=True)
    foreign = [
        b"",  # zero-length
        b"\x7fELF" + bytes(60),  # an object file, not an entry
        b"EEOBJ\r\n\x1a",  # the magic alone
        encode_entry(b, payload_of(b)),  # a valid entry of another key
        encode_entry(a, b"x").replace(b"\0\0\0\x01", b"\0\0\0\x02", 1),  # another version
        os.urandom(HEADER_SIZE + 50),
    ]
    for data in foreign:
        path.write_bytes(data)
        assert store.get(a) is None
        assert not path.exists()
    assert store.stats().corrupt == len(foreign)
    assert store.put(a, b"fresh") and store.get(a) == b"fresh"


def test_a_directory_where_an_entry_should_be_is_a_miss(tmp_path):
    store = ObjectStore(tmp_path)
    key = key_of("dir")
    entry_path(store, key).mkdir(parents=True)
    with no_warnings() as caught:
        assert store.get(key) is None
    assert store.readable and not caught


def test_a_reader_of_an_evicted_entry_still_reads_it_whole(tmp_path):
    store = ObjectStore(tmp_path)
    key = key_of("busy")
    payload = payload_of(key, 100_000)
    store.put(key, payload)
    path = entry_path(store, key)
    with open(path, "rb") as reader:
        size = os.fstat(reader.fileno()).st_size
        store.clear()  # as an evicting process would
        assert not path.exists()
        assert store.put(key, b"replaced meanwhile")
        assert read_entry(reader, key, size) == payload
    assert store.get(key) == b"replaced meanwhile"


# -- the size bound ---------------------------------------------------------------------


def test_least_recently_used_entries_are_evicted_under_the_bound(tmp_path):
    size = HEADER_SIZE + 1000
    store = ObjectStore(tmp_path, max_bytes=10 * size)
    names = [key_of(f"lru {i}") for i in range(10)]
    now = time.time()
    for i, key in enumerate(names):
        store.put(key, payload_of(key, 1000))
        os.utime(entry_path(store, key), (now - 1000 + i, now - 1000 + i))
    assert store.usage().entries == 10
    assert store.get(names[0]) is not None  # now the most recently used
    store.put(key_of("new"), payload_of(key_of("new"), 1000))
    store.evict()
    usage = store.usage()
    assert usage.bytes <= 0.9 * store.max_bytes
    present = {k for k in names if entry_path(store, k).exists()}
    assert names[0] in present and key_of("new") in {p.name for p in tmp_path.rglob("*")}
    evicted = [k for k in names if k not in present]
    assert evicted == names[1:1 + len(evicted)]  # oldest first
    assert store.stats().evictions == len(evicted) >= 2


def test_writing_past_the_bound_evicts_by_itself(tmp_path):
    store = ObjectStore(tmp_path, max_bytes=20_000)
    for i in range(200):
        key = key_of(f"fill {i}")
        store.put(key, payload_of(key, 500))
        assert store.usage().bytes <= 20_000 + 20_000 // 8 + HEADER_SIZE + 500
    assert store.stats().evictions > 0
    assert store.get(key_of("fill 199")) == payload_of(key_of("fill 199"), 500)


def test_a_payload_larger_than_the_bound_is_not_stored(tmp_path):
    store = ObjectStore(tmp_path, max_bytes=1000)
    assert not store.put(key_of("big"), bytes(2000))
    assert store.usage().entries == 0


def test_eviction_and_clear_leave_other_files_alone(tmp_path):
    store = ObjectStore(tmp_path, max_bytes=5000)
    mine = tmp_path / "notes.txt"
    mine.write_text("keep me")
    stray = tmp_path / "v1" / "ab" / "not-a-key"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_text("keep me too")
    stale = tmp_path / "v1" / "ab" / ".tmp-dead-writer"
    stale.write_bytes(b"partial")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    for i in range(50):
        store.put(key_of(f"x{i}"), bytes(400))
    store.evict()
    assert not stale.exists()  # a temporary file of a writer that died long ago
    assert mine.read_text() == "keep me" and stray.read_text() == "keep me too"
    assert store.clear() > 0
    assert store.usage().entries == 0
    assert mine.exists() and stray.exists()


# -- degradation --------------------------------------------------------------------------


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES])
def test_a_failing_write_degrades_to_no_cache_with_one_warning(tmp_path, monkeypatch, code):
    store = ObjectStore(tmp_path)
    key = key_of("before")
    assert store.put(key, b"kept")

    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(store_module.os, "replace", refuse)
    with no_warnings() as caught:
        warnings.simplefilter("always")
        for i in range(20):
            assert store.put(key_of(f"after {i}"), b"lost") is False
            assert store.get(key_of(f"after {i}")) is None
        assert store.get(key) == b"kept"  # what is there still serves
        store.close()
    cache_warnings = [w for w in caught if issubclass(w.category, CacheUnavailableWarning)]
    assert len(cache_warnings) == len(caught) == 1
    assert errno.errorcode[code] in str(cache_warnings[0].message)
    assert not store.writable
    leftovers = [p for p in tmp_path.rglob(".tmp-*")]
    assert leftovers == []


def test_a_failing_read_degrades_with_one_warning(tmp_path, monkeypatch):
    store = ObjectStore(tmp_path)
    store.put(key_of("r"), b"data")
    real_open = open

    def refuse(path, *args, **kwargs):
        if str(path).startswith(str(tmp_path)):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", refuse)
    with no_warnings() as caught:
        warnings.simplefilter("always")
        for _ in range(5):
            assert store.get(key_of("r")) is None
    assert len(caught) == 1 and issubclass(caught[0].category, CacheUnavailableWarning)


def test_an_uncreatable_directory_is_no_cache_with_one_warning(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with no_warnings() as caught:
        warnings.simplefilter("always")
        store = ObjectStore(blocker / "cache")
        assert store.get(key_of("a")) is None
        assert store.put(key_of("a"), b"x") is False
        store.close()
    assert len(caught) == 1 and issubclass(caught[0].category, CacheUnavailableWarning)


def _make_read_only(directories: list[Path]) -> list[Path]:
    """Make ``directories`` refuse new files, even to root (``chattr +i``);
    the ones changed. Skips the test where neither works."""
    if os.geteuid() != 0:
        for path in directories:
            path.chmod(0o555)
        return directories
    done = []
    for path in directories:
        if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
            _make_writable(done)
            pytest.skip("running as root without chattr +i: cannot make a read-only directory")
        done.append(path)
    return done


def _make_writable(directories: list[Path]) -> None:
    for path in directories:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path)], capture_output=True)
        else:
            path.chmod(0o755)


def test_a_read_only_directory_serves_hits_and_warns_once(tmp_path):
    """A real failure of the file system, not a simulated one."""
    present = key_of("present")
    ObjectStore(tmp_path, record_stats=False).put(present, b"hello")
    changed = _make_read_only([tmp_path, *(p for p in tmp_path.rglob("*") if p.is_dir())])
    try:
        with no_warnings() as caught:
            warnings.simplefilter("always")
            store = ObjectStore(tmp_path)
            assert store.get(present) == b"hello"
            assert [store.put(key_of(f"new {i}"), b"x") for i in range(10)] == [False] * 10
            assert store.get(key_of("new 0")) is None
            store.close()
    finally:
        _make_writable(changed)
    assert len(caught) == 1 and issubclass(caught[0].category, CacheUnavailableWarning)
    assert "cannot write" in str(caught[0].message)
    assert store.stats().hits == 1


# -- statistics -----------------------------------------------------------------------------


def test_counters_are_appended_to_the_history_and_trimmed(tmp_path):
    for i in range(RUNS_KEPT + 3):
        store = ObjectStore(tmp_path)
        store.get(key_of(f"miss {i}"))
        store.put(key_of("shared"), b"x")
        store.get(key_of("shared"))
        store.close()
        store.close()  # nothing new: no second record
    runs = read_runs(tmp_path)
    assert len(runs) == RUNS_KEPT
    assert all((r.stats.hits, r.stats.misses, r.stats.stores) == (1, 1, 1) for r in runs)
    assert all(r.pid == os.getpid() for r in runs)


def test_a_dropped_store_records_its_counters(tmp_path):
    store = ObjectStore(tmp_path)
    store.get(key_of("gone"))
    del store
    assert [r.stats.misses for r in read_runs(tmp_path)] == [1]


# -- several processes ------------------------------------------------------------------------

_WORKER = """
import random, sys
from execution_engine.cache import ObjectStore, object_key
directory, seed, operations = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def payload(key):
    rng = random.Random(key)
    return bytes(rng.randrange(256) for _ in range(rng.choice((10, 3000, 40000))))

keys = [object_key(f"shared {i}", "t") for i in range(60)]
expected = {k: payload(k) for k in keys}
store = ObjectStore(directory, max_bytes=600_000)
rng = random.Random(seed)
wrong = 0
for _ in range(operations):
    key = rng.choice(keys)
    got = store.get(key)
    if got is None:
        store.put(key, expected[key])
    elif got != expected[key]:
        wrong += 1
store.close()
s = store.stats()
print(wrong, s.hits, s.misses, s.stores, s.evictions, s.corrupt)
"""


def test_four_processes_share_one_cache_without_a_wrong_or_corrupt_read(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    workers = [subprocess.Popen([sys.executable, "-c", _WORKER, str(tmp_path), str(seed), "500"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for seed in range(4)]
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        results.append([int(x) for x in out.split()])
    wrong, hits, misses, stores, evictions, corrupt = (
        sum(col) for col in zip(*results, strict=True))
    assert wrong == 0 and corrupt == 0
    assert hits + misses == 4 * 500
    assert hits > 0 and evictions > 0  # the processes did share and the bound did bite
    store = ObjectStore(tmp_path, record_stats=False)
    for entry in (tmp_path / "v1").rglob("*"):
        if entry.is_file() and not entry.name.startswith("."):
            assert store.get(entry.name) is not None, f"corrupt entry {entry.name}"
    assert store.stats().corrupt == 0
    assert not list(tmp_path.rglob(".tmp-*"))
    assert len(read_runs(tmp_path)) == 4


# -- the command line ----------------------------------------------------------------------------


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "execution_engine", "cache", *args],
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
                          capture_output=True, text=True, timeout=60, cwd=REPO)


def test_cache_info_and_clear_through_the_command_line(tmp_path):
    store = ObjectStore(tmp_path)
    for i in range(3):
        store.put(key_of(f"cli {i}"), bytes(1000))
    for i in range(4):
        store.get(key_of(f"cli {i}"))  # 3 hits, 1 miss
    store.close()
    (tmp_path / "mine.txt").write_text("keep")

    info = run_cli("info", "--cache-dir", str(tmp_path))
    assert info.returncode == 0, info.stderr
    assert "entries: 3\n" in info.stdout
    assert f"bytes: {3 * (HEADER_SIZE + 1000)} " in info.stdout
    assert "hit rate, last 1 runs: 75.0% (3 hits, 1 misses)" in info.stdout

    cleared = run_cli("clear", "--cache-dir", str(tmp_path))
    assert cleared.returncode == 0, cleared.stderr
    assert "removed 5 file(s)" in cleared.stdout  # 3 entries, stats.json, stats.lock

    after = run_cli("info", "--cache-dir", str(tmp_path))
    assert "entries: 0\n" in after.stdout and "runs recorded: 0" in after.stdout
    assert (tmp_path / "mine.txt").read_text() == "keep"


def test_the_command_line_finds_the_cache_through_the_environment(tmp_path):
    by_env = tmp_path / "by-env"
    ObjectStore(by_env, record_stats=False).put(key_of("env"), b"x")
    info = run_cli("info", env={ENV_VAR: str(by_env)})
    assert f"cache directory: {by_env}\n" in info.stdout and "entries: 1\n" in info.stdout
    xdg = tmp_path / "xdg"
    info = run_cli("info", env={ENV_VAR: "", "XDG_CACHE_HOME": str(xdg)})
    assert f"cache directory: {xdg / 'execution_engine'} (absent)" in info.stdout
    assert not xdg.exists()  # info creates nothing


def test_default_directory_follows_xdg(tmp_path):
    home = os.path.expanduser("~")
    assert default_cache_dir({"XDG_CACHE_HOME": "/x/y"}) == Path("/x/y/execution_engine")
    assert default_cache_dir({"XDG_CACHE_HOME": "relative"}) == Path(
        home, ".cache", "execution_engine")
    assert default_cache_dir({}) == Path(home, ".cache", "execution_engine")
    assert resolve_cache_dir(tmp_path, {ENV_VAR: "/elsewhere"}) == tmp_path
    assert resolve_cache_dir(None, {ENV_VAR: "/elsewhere"}) == Path("/elsewhere")
