"""The perf map and jitdump writers, and the code ranges they are fed: file
contents parse, addresses lie in JIT memory and run the named code, a
swapped body appears. Engines are observed through add_event_listener
"""

from __future__ import annotations

import ctypes
import os
import struct
import subprocess
import sys

import pytest
from conftest import cfunc, make_tm, parse_ir, parse_object

from execution_engine import create_mcjit_compiler
from execution_engine.observe import CodeRange, ObjectLinked, code_ranges
from execution_engine.observe.jitdump import (
    CODE_LOAD,
    FILE_HEADER,
    JIT_CODE_CLOSE,
    JIT_CODE_LOAD,
    MAGIC,
    RECORD_HEADER,
    JitDump,
)
from execution_engine.observe.perf_map import PerfMap, format_lines, map_path

PROGRAM = """
define internal i64 @helper(i64 %x) {
  %y = mul i64 %x, 3
  ret i64 %y
}
define i64 @twice(i64 %x) {
  %y = add i64 %x, %x
  ret i64 %y
}
define i64 @entry(i64 %x) {
  %a = call i64 @helper(i64 %x)
  %b = call i64 @twice(i64 %a)
  ret i64 %b
}
"""
NEW_TWICE = """
define i64 @twice(i64 %x) {
  %y = add i64 %x, 1000
  ret i64 %y
}
"""
I64 = ctypes.c_int64


def read_map(path: str) -> list[tuple[int, int, str]]:
    rows = []
    with open(path) as f:
        for line in f:
            start, size, name = line.rstrip("\n").split(" ", 2)
            rows.append((int(start, 16), int(size, 16), name))
    return rows


def executable_anonymous_mappings() -> list[tuple[int, int]]:
    spans = []
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split()
            if "x" in fields[1] and len(fields) == 5:  # no path: anonymous
                lo, hi = (int(x, 16) for x in fields[0].split("-"))
                spans.append((lo, hi))
    return spans


def inside(address: int, size: int, spans: list[tuple[int, int]]) -> bool:
    return any(lo <= address and address + size <= hi for lo, hi in spans)


def test_lines_are_hex_without_prefix_and_skip_empty_ranges():
    text = format_lines([CodeRange("f", 0x7F00, 0x1A), CodeRange("empty", 0x8000, 0),
                         CodeRange("with space", 0x10, 1)])
    assert text == "7f00 1a f\n10 1 with space\n"


def test_code_ranges_name_every_function_including_local_ones():
    obj = parse_object(PROGRAM)
    text = next(s for s in obj.sections if s.name in (".text", ".ltext") and s.size)
    ranges = {r.name: r for r in code_ranges(obj, {text.index: 0x10000})}
    assert set(ranges) == {"helper", "twice", "entry"}
    for r in ranges.values():
        assert 0x10000 <= r.start and r.end <= 0x10000 + text.size and r.size > 0
    assert code_ranges(obj, {}) == []  # sections not loaded: nothing


def test_perf_map_names_bodies_and_stubs_at_running_addresses(tmp_path):
    writer = PerfMap(str(tmp_path))
    engine = create_mcjit_compiler(parse_ir(PROGRAM, "prog"), make_tm())
    engine.add_event_listener(writer)
    try:
        engine.finalize_object()
        rows = read_map(writer.path)
        assert writer.path == map_path(directory=str(tmp_path))
        spans = executable_anonymous_mappings()
        names = {name for _, _, name in rows}
        assert {"helper", "twice", "entry", "stub:twice", "stub:entry"} <= names
        for start, size, name in rows:
            assert inside(start, size, spans), (name, hex(start))
        body = {name: start for start, _, name in rows}
        # the addresses are the code: calling a body directly gives its result
        assert cfunc(body["twice"], I64, I64)(21) == 42
        assert cfunc(body["entry"], I64, I64)(1) == 6
        assert body["stub:entry"] == engine.get_function_address("entry")
    finally:
        engine.close()


@pytest.mark.parametrize("policy", ["direct", "stub"])
def test_a_swapped_body_appears_with_its_new_address(tmp_path, policy):
    writer = PerfMap(str(tmp_path))
    events = []
    engine = create_mcjit_compiler(parse_ir(PROGRAM, "prog"), make_tm(), grace_period=None,
                                   redirection=policy)
    engine.add_event_listener(writer)
    engine.add_event_listener(events.append)
    try:
        engine.finalize_object()
        engine.update_module(parse_ir(NEW_TWICE, "v2"))
        twice = [start for start, _, name in read_map(writer.path) if name == "twice"]
        # "direct": the program's module was linked again (calls through stubs);
        # that copy of it holds a copy of the old twice too, named as well.
        assert len(twice) == (3 if policy == "direct" else 2)
        assert len(set(twice)) == len(twice)
        assert cfunc(twice[1], I64, I64)(1) == 1001  # the new body, named
        assert cfunc(engine.get_function_address("entry"), I64, I64)(1) == 1003
        swaps = [e for e in events if type(e).__name__ == "FunctionSwapped"]
        assert [(e.name, e.old_body, e.new_body) for e in swaps] == [
            ("twice", twice[0], twice[1])]
        stub_lines = [n for _, _, n in read_map(writer.path) if n == "stub:twice"]
        assert stub_lines == ["stub:twice"]  # a stub is named once
    finally:
        engine.close()


def test_two_engines_share_one_file(tmp_path):
    writer = PerfMap(str(tmp_path))
    first = create_mcjit_compiler(parse_ir(PROGRAM, "a"), make_tm())
    second = create_mcjit_compiler(parse_ir(NEW_TWICE.replace("@twice", "@other"), "b"),
                                   make_tm())
    first.add_event_listener(writer)
    second.add_event_listener(writer)
    try:
        first.finalize_object()
        second.finalize_object()
        names = [n for _, _, n in read_map(writer.path)]
        assert "entry" in names and "other" in names
        assert writer.lines == len(names)
    finally:
        first.close()
        second.close()


def test_a_forked_child_writes_its_own_file(tmp_path):
    writer = PerfMap(str(tmp_path))
    writer.write([CodeRange("parent", 0x1000, 8)])
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            writer.write([CodeRange("child", 0x2000, 8)])
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert [n for _, _, n in read_map(map_path(directory=str(tmp_path)))] == ["parent"]
    assert [n for _, _, n in read_map(map_path(pid, str(tmp_path)))] == ["child"]
    writer.close()


def test_default_map_is_the_processes_tmp_file():
    code = ("import os; from execution_engine.observe.perf_map import perf_map, CodeRange;"
            "m = perf_map(); m.write([CodeRange('f', 0x10, 1)]); print(m.path, os.getpid())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    try:
        assert out[0] == f"/tmp/perf-{out[1]}.map"
        assert read_map(out[0]) == [(0x10, 1, "f")]
    finally:
        os.unlink(out[0])


# -- jitdump -------------------------------------------------------------------

def parse_dump(path: str) -> tuple[tuple, list[tuple]]:
    data = open(path, "rb").read()
    header = FILE_HEADER.unpack_from(data, 0)
    records, at = [], header[2]
    while at < len(data):
        kind, total, stamp = RECORD_HEADER.unpack_from(data, at)
        body = data[at + RECORD_HEADER.size: at + total]
        if kind == JIT_CODE_LOAD:
            fields = CODE_LOAD.unpack_from(body, 0)
            rest = body[CODE_LOAD.size:]
            name, code = rest.split(b"\0", 1)
            records.append((kind, stamp, fields, name.decode(), code))
        else:
            records.append((kind, stamp, (), "", b""))
        at += total
    return header, records


def test_jitdump_records_code_bytes_and_keeps_a_marker_mapping(tmp_path):
    dump = JitDump(str(tmp_path))
    engine = create_mcjit_compiler(parse_ir(PROGRAM, "prog"), make_tm())
    engine.add_event_listener(dump)
    try:
        engine.finalize_object()
        with open("/proc/self/maps") as f:
            marker = [line for line in f if line.rstrip().endswith(dump.path)]
        assert marker and marker[0].split()[1].startswith("r-x")
        header, records = parse_dump(dump.path)
        magic, version, size, machine, _, pid, created, flags = header
        assert (magic, version, size, pid, flags) == (MAGIC, 1, FILE_HEADER.size, os.getpid(), 0)
        assert machine == 62
        loads = {r[3]: r for r in records}
        assert {"helper", "twice", "entry", "stub:entry"} <= set(loads)
        stamps = [r[1] for r in records]
        assert stamps == sorted(stamps) and stamps[0] >= created
        indices = [r[2][5] for r in records]
        assert indices == list(range(len(records)))
        for _, _, (rpid, _, vma, addr, size, _), name, code in records:
            assert rpid == pid and vma == addr and len(code) == size
            assert code == ctypes.string_at(addr, size), name
        assert cfunc(loads["twice"][2][3], I64, I64)(5) == 10
    finally:
        engine.close()
        dump.close()
    _, records = parse_dump(dump.path)
    assert records[-1][0] == JIT_CODE_CLOSE
    with open("/proc/self/maps") as f:
        assert dump.path not in f.read()


def test_jitdump_listener_ignores_other_events_and_given_bytes_win(tmp_path):
    dump = JitDump(str(tmp_path))
    dump(ObjectLinked("m", ()))
    index = dump.code_load("made up", 0x1234, 3, code=b"\x90\x90\xc3")
    dump.close()
    dump.close()  # idempotent
    _, records = parse_dump(dump.path)
    assert index == 0
    assert [(r[3], r[4]) for r in records if r[0] == JIT_CODE_LOAD] == [
        ("made up", b"\x90\x90\xc3")]
    with pytest.raises(ValueError):
        dump.code_load("late", 0, 0, code=b"")
    assert struct.unpack_from("<I", open(dump.path, "rb").read())[0] == MAGIC


def test_lazily_compiled_functions_appear_under_their_own_names(tmp_path):
    writer = PerfMap(str(tmp_path))
    engine = create_mcjit_compiler(parse_ir(PROGRAM, "prog"), make_tm(), lazy=True)
    engine.add_event_listener(writer)
    try:
        entry = engine.get_function_address("entry")
        before = read_map(writer.path) if os.path.exists(writer.path) else []
        assert "entry" not in {n for _, _, n in before}  # not compiled before its first call
        assert cfunc(entry, I64, I64)(2) == 12
        rows = read_map(writer.path)
        body = {name: start for start, _, name in rows}
        assert {"entry", "helper", "twice"} <= set(body)  # hidden names shown as written
        assert not any(name.startswith("__ee.") for name in body)
        assert cfunc(body["helper"], I64, I64)(5) == 15
    finally:
        engine.close()
