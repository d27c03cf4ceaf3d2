"""Loading a whole IR program from a file and adapting it to the host."""

from __future__ import annotations

import llvmlite.binding as llvm

from ..errors import ProgramError


def load_module(path: str, target_machine: llvm.TargetMachine, *,
                verify: bool = True) -> llvm.ModuleRef:
    """Parse ``path`` (.ll text or .bc bitcode) and retarget it to the host;
    verify it unless ``verify`` is false (an eager engine verifies every
    module it is given: once is enough).

    Like ``lli``, a module written for another target (say 32-bit x86) is
    run on the host: its triple and data layout are replaced by the target
    machine's.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ProgramError(f"cannot read '{path}': {exc.strerror}") from None
    try:
        if data[:4] == b"BC\xc0\xde" or data[:4] == b"\xde\xc0\x17\x0b":
            module = llvm.parse_bitcode(data)
        else:
            module = llvm.parse_assembly(data.decode("utf-8"))
        if verify:
            module.verify()
    except (RuntimeError, UnicodeDecodeError) as exc:
        message = str(exc).strip().replace("<string>:", f"{path}:")
        raise ProgramError(f"{path}: {message}") from None
    module.name = path
    module.triple = target_machine.triple
    module.data_layout = str(target_machine.target_data)
    return module
