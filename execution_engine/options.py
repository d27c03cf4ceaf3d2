"""The engine's options: one frozen value, validated once, from which the
stack is composed (:mod:`.stack`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any

from .compilers import CompileBackend, InProcessCompiler
from .executors.base import ExecutorSpec
from .executors.local import LocalExecutorSpec
from .policies import (
    BACKGROUND,
    DIRECT,
    FUNCTION,
    BackgroundPolicy,
    PartitionPolicy,
    RedirectionPolicy,
    background_policy,
    partition_policy,
    redirection_policy,
)
from .tiering.policy import TierUp, tier_up_policy

PERF_MAP_ENV = "EXECUTION_ENGINE_PERF_MAP"
JITDUMP_ENV = "EXECUTION_ENGINE_JITDUMP"
JIT_EVENTS_ENV = "EXECUTION_ENGINE_JIT_EVENTS"
CACHE_DIR_ENV = "EXECUTION_ENGINE_CACHE_DIR"
WORKERS_ENV = "EXECUTION_ENGINE_COMPILE_WORKERS"


@dataclass(frozen=True)
class EngineOptions:
    """What an engine is made of.

    ``strict``: a strong symbol defined again raises DuplicateSymbolError
    (default: the later definition wins, as MCJIT does). ``redirection``:
    :class:`~.policies.RedirectionPolicy` (default ``DIRECT``). ``lazy``: compile each function on
    its first call, cut by ``partition`` (:class:`~.policies.PartitionPolicy`).
    ``grace_period``: seconds before replaced code is freed (``None``: only at
    an explicit ``reclaim()``). ``executor``: where code runs
    (:class:`~.executors.local.LocalExecutorSpec` or
    :class:`~.executors.remote.host.RemoteExecutorSpec`). ``compiler``: what
    turns IR into objects (:class:`~.compilers.CompileBackend`).
    ``compile_in_place``: code generation rewrites the modules added (as
    MCJIT's does: numba reads the result); ``False`` compiles copies and
    leaves them as written, which ``update_module(..., replaces=old)`` needs to
    recognise unchanged functions of ``old``. ``perf_map``/``jitdump``: write
    ``/tmp/perf-<pid>.map`` lines / a ``jit-<pid>.dump`` for perf as code is
    linked (environment: ``EXECUTION_ENGINE_PERF_MAP=1``,
    ``EXECUTION_ENGINE_JITDUMP=1``, read by :meth:`from_keywords`).
    ``jit_events``: as if ``enable_jit_events()`` were called at creation (perf
    map and GDB names; ``EXECUTION_ENGINE_JIT_EVENTS=1``). ``cache_dir``: a
    persistent object cache in that directory (:mod:`.cache`; environment:
    ``EXECUTION_ENGINE_CACHE_DIR``; ``None``: no cache). ``compile_workers``:
    compile in that many worker processes (:mod:`.compile_service`; ``"auto"``:
    the usable cores; 0: in process; environment:
    ``EXECUTION_ENGINE_COMPILE_WORKERS``), where LLVM's fatal errors become
    ``CompileError``. ``tier_up``: a :class:`~.tiering.policy.TierUp` (``True``:
    the defaults): compile at its low level first, count calls and recompile
    hot functions at its high level (:mod:`.tiering`); needs an in-process
    executor and a redirection policy under which every call goes through a
    pointer slot (:meth:`~.policies.RedirectionPolicy.check_counted`;
    :meth:`from_keywords` chooses ``"stub"`` when none is given).
    ``background``: a lazy engine with compile workers compiles ahead in
    them while JIT'd code runs (:class:`~.policies.BackgroundPolicy`;
    ``True``: the default policy, ``False``: off); ignored without ``lazy``
    and workers.
    """

    strict: bool = False
    redirection: RedirectionPolicy = DIRECT
    lazy: bool = False
    partition: PartitionPolicy = FUNCTION
    grace_period: float | None = 1.0
    executor: ExecutorSpec = field(default_factory=LocalExecutorSpec)
    compiler: CompileBackend = field(default_factory=InProcessCompiler)
    compile_in_place: bool = True
    perf_map: bool = False
    jitdump: bool = False
    jit_events: bool = False
    cache_dir: str | None = None
    compile_workers: int = 0
    tier_up: TierUp | None = None
    background: BackgroundPolicy = BACKGROUND

    def __post_init__(self) -> None:
        for name in ("strict", "lazy", "compile_in_place", "perf_map", "jitdump", "jit_events"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False, not {getattr(self, name)!r}")
        object.__setattr__(self, "redirection", redirection_policy(self.redirection))
        object.__setattr__(self, "partition", partition_policy(self.partition))
        object.__setattr__(self, "background", background_policy(self.background))
        if self.grace_period is not None and (
                isinstance(self.grace_period, bool)
                or not isinstance(self.grace_period, (int, float))
                or not self.grace_period >= 0):  # NaN too
            raise ValueError(f"grace_period must be a number of seconds >= 0 or None, not "
                             f"{self.grace_period!r}")
        if not callable(getattr(self.executor, "create", None)):
            raise TypeError(f"executor must be an executor spec (LocalExecutorSpec, "
                            f"RemoteExecutorSpec), not {self.executor!r}")
        if not callable(getattr(self.compiler, "compile", None)):
            raise TypeError(f"compiler must be a compile backend (an object with a compile() "
                            f"method, e.g. InProcessCompiler), not {self.compiler!r}")
        if self.lazy:
            self.redirection.check_lazy()
        object.__setattr__(self, "tier_up", tier_up_policy(self.tier_up))
        if self.tier_up is not None:
            self.redirection.check_counted()
            if not isinstance(self.executor, LocalExecutorSpec):
                raise ValueError("tier_up needs an in-process executor: its counting "
                                 "trampolines live in this process (not with remote=True)")
        from .compile_service.pool import resolve_worker_count

        object.__setattr__(self, "compile_workers", resolve_worker_count(
            self.compile_workers if self.compile_workers is not None else 0))
        if self.cache_dir is not None:
            if not isinstance(self.cache_dir, (str, os.PathLike)) or not os.fspath(self.cache_dir):
                raise TypeError(f"cache_dir must be a directory path or None, not "
                                f"{self.cache_dir!r}")
            object.__setattr__(self, "cache_dir", os.fspath(self.cache_dir))

    @classmethod
    def from_keywords(cls, **keywords: Any) -> EngineOptions:
        """The options ``create_mcjit_compiler(..., **keywords)`` asks for.

        Besides the fields, ``remote=True`` (with ``timeout``) selects the
        remote executor and ``session_capacity`` sizes the local one's LLJIT
        sessions. An unknown keyword raises ``TypeError`` listing the known.
        """
        known = {f.name for f in fields(cls)} | {"remote", "timeout", "session_capacity"}
        unknown = sorted(set(keywords) - known)
        if unknown:
            raise TypeError(f"unknown engine option(s) {', '.join(unknown)}; known: "
                            f"{', '.join(sorted(known))}")
        for name, variable in (("perf_map", PERF_MAP_ENV), ("jitdump", JITDUMP_ENV),
                               ("jit_events", JIT_EVENTS_ENV)):
            if name not in keywords and os.environ.get(variable, "") not in ("", "0"):
                keywords[name] = True
        if "compile_workers" not in keywords and os.environ.get(WORKERS_ENV, "").strip():
            keywords["compile_workers"] = os.environ[WORKERS_ENV]
        if "cache_dir" not in keywords and os.environ.get(CACHE_DIR_ENV):
            keywords["cache_dir"] = os.environ[CACHE_DIR_ENV]
        if keywords.get("tier_up") not in (None, False) and "redirection" not in keywords:
            keywords["redirection"] = "stub"  # every call through a slot: all are counted
        remote = keywords.pop("remote", False)
        timeout = keywords.pop("timeout", None)
        capacity = keywords.pop("session_capacity", None)
        if not isinstance(remote, bool):
            raise TypeError(f"remote must be True or False, not {remote!r}")
        if "executor" not in keywords:
            if remote:
                from .executors.remote.host import RemoteExecutorSpec

                if capacity is not None:
                    raise ValueError("session_capacity applies to in-process engines only")
                keywords["executor"] = RemoteExecutorSpec(timeout=timeout)
            else:
                if timeout is not None:
                    raise ValueError("timeout applies to remote engines only (remote=True)")
                keywords["executor"] = LocalExecutorSpec(
                    **({} if capacity is None else {"session_capacity": capacity}))
        elif remote or timeout is not None or capacity is not None:
            raise ValueError("give either executor= or remote/timeout/session_capacity")
        return cls(**keywords)
