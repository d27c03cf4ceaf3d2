"""Checks of the ported MCJIT regression programs' headers, manifest and IR.

These run without the engine: they only check that every catalogue line has
exactly one program, that headers parse, that extra modules exist, and that
every ``.ll`` file parses and verifies with llvmlite.
"""

from __future__ import annotations

from pathlib import Path

import llvmlite.binding as llvm
import pytest

try:
    from compat_tests.programs_index import load_programs, parse_program, read_header
except ImportError:  # compat_tests not importable as a package: use this directory
    from programs_index import load_programs, parse_program, read_header

ROOT = Path(__file__).resolve().parent / "programs"

# The test names of /work/shared/MCJIT-CATALOGUE.md (bullet lines starting
# with "- `"), copied here because shared/ is not available in CI.
CATALOGUE = (
    "MCJIT/2002-12-16-ArgTest.ll",
    "MCJIT/2003-05-07-ArgumentTest.ll",
    "MCJIT/2003-08-21-EnvironmentTest.ll",
    "MCJIT/2003-08-15-AllocaAssertion.ll",
    "MCJIT/2003-08-23-RegisterAllocatePhysReg.ll",
    "MCJIT/2005-12-02-TailCallBug.ll",
    "MCJIT/test-call.ll",
    "MCJIT/test-call-no-external-funcs.ll",
    "MCJIT/test-return.ll",
    "Orc/trivial-return-zero.ll",
    "Orc/trivial-call-to-function.ll",
    "Orc/trivial-call-to-internal-function.ll",
    "OrcLazy/minimal.ll",
    "OrcLazy/single-function-call.ll",
    "OrcLazy/printargv.ll",
    "Orc/empty-entry-function.ll",
    "MCJIT/2003-05-06-LivenessClobber.ll",
    "MCJIT/2003-10-18-PHINode-ConstantExpr-CondCode-Failure.ll",
    "MCJIT/2013-04-04-RelocAddend.ll",
    "MCJIT/test-global.ll",
    "MCJIT/test-global-init-nonzero.ll",
    "MCJIT/test-local.ll",
    "MCJIT/test-loadstore.ll",
    "MCJIT/test-ptr-reloc.ll",
    "MCJIT/test-data-align.ll",
    "MCJIT/2003-01-15-AlignmentTest.ll",
    "MCJIT/test-constantexpr.ll",
    "MCJIT/test-phi.ll",
    "MCJIT/hello.ll",
    "MCJIT/hello2.ll",
    "Orc/trivial-reference-to-global-variable.ll",
    "Orc/trivial-reference-to-internal-variable-nonzeroinit.ll",
    "Orc/trivial-reference-to-internal-variable-zeroinit.ll",
    "Orc/global-variable-alignment.ll",
    "OrcLazy/global_aliases.ll",
    "OrcLazy/anonymous_globals.ll",
    "OrcLazy/private_linkage.ll",
    "MCJIT/test-common-symbols.ll",
    "MCJIT/pr13727.ll",
    "MCJIT/test-common-symbols-alignment.ll",
    "OrcLazy/common-symbols.ll",
    "MCJIT/test-global-ctors.ll",
    "Orc/global-ctor-with-cast.ll",
    "Orc/global-ctor-order.ll",
    "MCJIT/eh.ll",
    "MCJIT/eh-lg-pic.ll",
    "MCJIT/multi-module-eh-a.ll",
    "MCJIT/remote/eh.ll",
    "MCJIT/multi-module-sm-pic-a.ll",
    "MCJIT/weak-function.ll",
    "OrcLazy/weak-function.ll",
    "Orc/weak-comdat.ll",
    "Orc/comdat-any.ll",
    "MCJIT/stubs.ll",
    "MCJIT/stubs-sm-pic.ll",
    "MCJIT/remote/stubs-remote.ll",
    "MCJIT/remote/stubs-sm-pic.ll",
    "MCJIT/remote/simpletest-remote.ll",
    "MCJIT/remote/multi-module-a.ll",
    "MCJIT/remote/test-common-symbols-remote.ll",
    "MCJIT/remote/test-data-align-remote.ll",
    "MCJIT/remote/test-fp-no-external-funcs-remote.ll",
    "MCJIT/remote/test-global-init-nonzero-remote.ll",
    "MCJIT/remote/test-global-init-nonzero-sm-pic.ll",
    "MCJIT/remote/test-ptr-reloc-remote.ll",
    "MCJIT/remote/test-ptr-reloc-sm-pic.ll",
    "MCJIT/test-global-init-nonzero-sm-pic.ll",
    "MCJIT/test-ptr-reloc-sm-pic.ll",
    "MCJIT/test-fp.ll",
    "MCJIT/test-fp-no-external-funcs.ll",
    "MCJIT/frem.ll",
    "MCJIT/fpbitcast.ll",
    "MCJIT/fma3-jit.ll",
    "MCJIT/interpreter-bitcount-intrinsics.ll",
    "MCJIT/2007-12-10-APIntLoadStore.ll",
    "MCJIT/2008-06-05-APInt-OverAShr.ll",
)

MANIFEST = [
    line.strip()
    for line in (ROOT / "manifest.txt").read_text(encoding="utf-8").splitlines()
    if line.strip()
]
ALL_LL = sorted(path.relative_to(ROOT).as_posix() for path in ROOT.rglob("*.ll"))
PROGRAMS = load_programs(ROOT)


def test_catalogue_literal_has_no_duplicates():
    assert len(CATALOGUE) == len(set(CATALOGUE))


def test_manifest_is_sorted_and_unique():
    assert MANIFEST == sorted(set(MANIFEST))


def test_manifest_lists_exactly_the_main_programs():
    found = sorted(p.path.relative_to(ROOT).as_posix() for p in PROGRAMS)
    assert MANIFEST == found


@pytest.mark.parametrize("rel", MANIFEST)
def test_manifest_entry_parses(rel):
    program = parse_program(ROOT / rel)
    assert program is not None, f"{rel} has no header"
    assert program.catalogue
    assert program.kinds
    # Programs live at the path the catalogue names.
    assert rel == program.catalogue


def test_every_catalogue_line_has_exactly_one_program():
    by_name: dict[str, list[str]] = {}
    for program in PROGRAMS:
        by_name.setdefault(program.catalogue, []).append(str(program.path))
    missing = [name for name in CATALOGUE if name not in by_name]
    doubled = {name: paths for name, paths in by_name.items() if len(paths) > 1}
    unknown = sorted(set(by_name) - set(CATALOGUE))
    assert not missing, f"catalogue lines without a program: {missing}"
    assert not doubled, f"catalogue lines with several programs: {doubled}"
    assert not unknown, f"programs naming no catalogue line: {unknown}"


def test_extras_exist_and_have_no_header():
    for program in PROGRAMS:
        for extra in program.extra:
            assert extra.is_file(), f"{program.path}: missing extra module {extra}"
            assert not read_header(extra), f"{extra} has a header, so it would run as main"


def test_every_ll_file_is_a_program_or_an_extra():
    used = {p.path.resolve() for p in PROGRAMS}
    used |= {e.resolve() for p in PROGRAMS for e in p.extra}
    stray = [rel for rel in ALL_LL if (ROOT / rel).resolve() not in used]
    assert not stray, f"unused .ll files: {stray}"


def test_header_values_are_well_formed():
    allowed_options = {
        "--relocation-model": {"static", "pic", "default"},
        "--code-model": {"small", "medium", "large", "default"},
        "--opt": {"0", "1", "2", "3"},
    }
    for program in PROGRAMS:
        options = list(program.options)
        assert len(options) % 2 == 0, program.path
        for flag, value in zip(options[::2], options[1::2], strict=True):
            assert value in allowed_options.get(flag, ()), (program.path, flag, value)
        assert isinstance(program.exit, int) or program.exit == "nonzero", program.path
        if program.entry is not None:
            assert program.exit == "nonzero" and program.stderr_contains, program.path


@pytest.fixture(scope="module")
def native_llvm():
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()


@pytest.mark.parametrize("rel", ALL_LL)
def test_ll_file_parses_and_verifies(native_llvm, rel):
    module = llvm.parse_assembly((ROOT / rel).read_text(encoding="utf-8"))
    module.verify()
