"""Composing an engine's stack from its options (what ORC's LLJITBuilder does).

Top to bottom::

    CompileOnDemandLayer   lazy engines only: one function per partition, on first call
      LazyEmitLayer        beside it: a module's variables, held until needed
    IRTransformLayer       only if the redirection policy rewrites IR (SINGLE)
    IRCompileLayer         IR -> objects through the compile backend (behind the
                           persistent cache, with cache_dir); object-cache hooks
    RedirectionLayer       functions behind stubs + pointer slots; data sharing; ctors
    executor               links, holds stubs, runs code (this process or another)

with the SymbolTable (which definition of each name is current) between the
RedirectionLayer and the stubs. With ``tier_up`` the stubs are
:class:`~.tiering.stubs.CountingStubs` (counted functions sit behind counting
trampolines) and the IRCompileLayer compiles at the policy's low level; the
engine's tier-up component (:mod:`.tiering.controller`) promotes hot
functions. A stack is rebuilt from the same options when a remote executor
is restarted.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import llvmlite.binding as llvm

from .executors.base import Executor, StubAllocator
from .ir.call_sites import call_through_slots
from .layers.background import background_component
from .layers.base import Layer
from .layers.compile_on_demand import EAGER, CompileOnDemandLayer, OnDemand
from .layers.ir_compile import IRCompileLayer
from .layers.ir_transform import IRTransformLayer
from .layers.redirection import RedirectionLayer
from .linking.reclaim import Reclaimer
from .linking.symbols import SymbolTable
from .native.stubs import Stub
from .options import EngineOptions
from .target_spec import spec_of, traits, with_opt_level
from .tiering.stubs import CountingStubs


@dataclass(eq=False)
class Stack:
    """One engine's layers and what sits beside them.

    ``top`` is where modules are added; ``on_demand`` answers for code not
    compiled yet (:data:`~.layers.compile_on_demand.EAGER` in eager stacks).
    ``local_fallbacks`` maps a shared local name to the address the module's
    own object gave it, for partitions recompiled out of an eagerly compiled
    module (hot-swap fills it). Closing the stack frees all code and stubs.
    """

    executor: Executor
    stubs: StubAllocator
    symbols: SymbolTable
    redirection: RedirectionLayer
    compile_layer: IRCompileLayer
    top: Layer
    on_demand: OnDemand
    local_fallbacks: dict[str, int] = field(default_factory=dict)
    counting: CountingStubs | None = None  # tier-up's view of ``stubs``
    machines: list[llvm.TargetMachine] = field(default_factory=list)  # owned

    def resolve_pending(self, name: str) -> int | None:
        """Names only code not linked yet defines (see RedirectionLayer)."""
        return self.on_demand.resolve(name) or self.local_fallbacks.get(name)

    def start_background(self, options: EngineOptions, target_machine: llvm.TargetMachine,
                         lock: Callable[[], AbstractContextManager[None]]) -> None:
        """A lazy stack with compile workers compiles ahead in them
        (:mod:`.layers.background`); ``lock`` is the engine's."""
        if not isinstance(self.top, CompileOnDemandLayer):
            return
        transform = None
        if options.redirection.slot_calls:
            has_stub = self.symbols.has_stub
            transform = lambda text: call_through_slots(text, has_stub)  # noqa: E731
        self.top.set_background(background_component(
            options.background, options.compile_workers, target_machine, self.compile_layer,
            lock, transform))

    def close(self) -> None:
        if isinstance(self.top, CompileOnDemandLayer):
            self.top.close()
        self.executor.close()
        self.stubs.close()
        for machine in self.machines:
            machine.close()
        self.machines.clear()


def build_stack(options: EngineOptions, target_machine: llvm.TargetMachine,
                mappings: Callable[[str], int | None], reclaimer: Reclaimer,
                on_unbound: Callable[[Stub], int]) -> Stack:
    """A stack for ``options``; ``on_unbound(stub)`` serves calls that reach a
    stub with no body (lazy compilation, removed functions)."""
    executor = options.executor.create(target_machine)
    stubs: StubAllocator = executor.stub_manager(on_unbound)
    counting = None
    machines = []
    if options.tier_up is not None:  # options checked the executor is in process
        stubs = counting = CountingStubs(stubs)  # type: ignore[arg-type]
        if options.tier_up.low != _opt_level(target_machine):
            target_machine = with_opt_level(target_machine, traits(target_machine),
                                            options.tier_up.low)
            machines.append(target_machine)
    symbols = SymbolTable(stubs, strict=options.strict)
    redirection = RedirectionLayer(executor.linker, symbols, mappings, executor.resolve_process,
                                   policy=options.redirection, reclaimer=reclaimer)
    compiler = options.compiler
    # The compile service and the cache are imported by the engines that use them.
    if options.compile_workers:
        from .compile_service.backend import WorkerCompiler

        # behind a cache the workers start on the first miss (a warm run needs none)
        compiler = WorkerCompiler(options.compile_workers, fallback=compiler,
                                  start=options.cache_dir is None)
    local = options.compiler
    if options.cache_dir is not None:
        from .cache.layer import CachingBackend, describe_target, shared_store

        store = shared_store(options.cache_dir)
        local = CachingBackend(local, store, describe_target)
        compiler = CachingBackend(compiler, store, describe_target) if (
            compiler is not options.compiler) else local
    compile_layer = IRCompileLayer(target_machine, redirection, compiler=compiler,
                                   interposable=options.redirection.redirects,
                                   policy=options.redirection)
    compile_layer.local = local
    ir: Layer = compile_layer
    transform = options.redirection.ir_transform(symbols.has_stub)
    if transform is not None:
        ir = IRTransformLayer(ir, transform)
    top: Layer = ir
    on_demand = EAGER
    if options.lazy:
        top = on_demand = CompileOnDemandLayer(ir, symbols, partition=options.partition,
                                               release_direct=redirection.release_direct,
                                               compile_layer=compile_layer)
    stack = Stack(executor, stubs, symbols, redirection, compile_layer, top, on_demand,
                  counting=counting, machines=machines)
    redirection.set_pending_resolver(stack.resolve_pending)
    return stack


def _opt_level(target_machine: llvm.TargetMachine) -> int | None:
    spec = spec_of(target_machine)
    return None if spec is None else spec.opt_level
