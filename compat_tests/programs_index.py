"""Index of the ported MCJIT/ORC regression programs in ``compat_tests/programs``.

Every main program starts with a header of ``; KEY: value`` comment lines (the
format is described in ``programs/README.md``); extra modules have no header.
:func:`load_programs` finds the main programs under a root and parses their
headers into :class:`Program` records.  Pure Python, no test framework needed.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

PROGRAMS_ROOT = Path(__file__).resolve().parent / "programs"

KNOWN_KEYS = frozenset(
    {
        "CATALOGUE",
        "KINDS",
        "OPTIONS",
        "EXTRA",
        "ARGS",
        "EXIT",
        "STDOUT",
        "ENTRY",
        "STDERR-CONTAINS",
    }
)
KNOWN_KINDS = frozenset({"mcjit", "default", "lazy", "remote"})

# "; KEY: value" or "; KEY:" -- keys are upper case letters and dashes.
_DIRECTIVE = re.compile(r"^;\s*([A-Z][A-Z-]*):(.*)$")


class HeaderError(ValueError):
    """A program header is malformed; the message names the file."""


@dataclass
class Program:
    """One main program and what its header expects of a run."""

    path: Path
    catalogue: str
    kinds: list[str]
    options: list[str] = field(default_factory=list)
    extra: list[Path] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    exit: int | str = 0  # an int, or the string "nonzero"
    stdout: list[str] | None = None  # expected lines, None when not checked
    entry: str | None = None  # only set for an explicit --entry-function
    stderr_contains: str | None = None

    @property
    def name(self) -> str:
        """The catalogue name, e.g. ``MCJIT/test-global.ll``."""
        return self.catalogue

    def cli_args(self, *, jit_kind: str | None = None, remote: bool = False) -> list[str]:
        """Arguments after ``python -m execution_engine run`` for one run of this program."""
        argv = [str(self.path)]
        for extra in self.extra:
            argv += ["--extra-module", str(extra)]
        if self.entry is not None:
            argv.append(f"--entry-function={self.entry}")
        if jit_kind is not None:
            argv += ["--jit-kind", jit_kind]
        argv += self.options
        if remote:
            argv.append("--remote")
        if self.args:
            argv += ["--", *self.args]
        return argv


def read_header(path: Path) -> dict[str, list[str]]:
    """Return the header directives of ``path``: key -> values in file order.

    The header is the leading block of lines starting with ``;``.  Lines in it
    that are not ``KEY:`` directives are free-form comments.  Values are
    stripped of surrounding white space.
    """
    directives: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.rstrip("\r\n")
            if not line.startswith(";"):
                break
            match = _DIRECTIVE.match(line)
            if match is None:
                continue
            key, value = match.group(1), match.group(2).strip()
            if key not in KNOWN_KEYS:
                raise HeaderError(f"{path}: unknown directive {key!r}")
            directives.setdefault(key, []).append(value)
    return directives


def _single(path: Path, directives: dict[str, list[str]], key: str) -> str | None:
    values = directives.get(key)
    if values is None:
        return None
    if len(values) != 1:
        raise HeaderError(f"{path}: directive {key} given {len(values)} times")
    return values[0]


def parse_program(path: Path) -> Program | None:
    """Parse one ``.ll`` file; None when it has no header (an extra module)."""
    path = Path(path)
    directives = read_header(path)
    if not directives:
        return None
    catalogue = _single(path, directives, "CATALOGUE")
    if not catalogue:
        raise HeaderError(f"{path}: header without a CATALOGUE directive")

    kinds = (_single(path, directives, "KINDS") or "").split()
    if not kinds or not set(kinds) <= KNOWN_KINDS:
        raise HeaderError(f"{path}: KINDS must name some of {sorted(KNOWN_KINDS)}: {kinds}")

    exit_text = _single(path, directives, "EXIT")
    exit_status: int | str = 0
    if exit_text is not None:
        if exit_text == "nonzero":
            exit_status = exit_text
        else:
            try:
                exit_status = int(exit_text)
            except ValueError:
                raise HeaderError(f"{path}: EXIT must be an int or 'nonzero'") from None

    extra_text = _single(path, directives, "EXTRA") or ""
    return Program(
        path=path,
        catalogue=catalogue,
        kinds=kinds,
        options=shlex.split(_single(path, directives, "OPTIONS") or ""),
        extra=[path.parent / name for name in extra_text.split()],
        args=shlex.split(_single(path, directives, "ARGS") or ""),
        exit=exit_status,
        stdout=directives.get("STDOUT"),
        entry=_single(path, directives, "ENTRY"),
        stderr_contains=_single(path, directives, "STDERR-CONTAINS"),
    )


def load_programs(root: Path | str = PROGRAMS_ROOT) -> list[Program]:
    """All main programs under ``root`` (files with a header), sorted by path."""
    programs = []
    for path in sorted(Path(root).rglob("*.ll")):
        program = parse_program(path)
        if program is not None:
            programs.append(program)
    return programs
