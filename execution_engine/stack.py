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
RedirectionLayer and the stubs. A stack is rebuilt from the same options
when a remote executor is restarted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import llvmlite.binding as llvm

from .cache.layer import CachingBackend, describe_target, shared_store
from .compile_service.backend import WorkerCompiler
from .executors.base import Executor, StubAllocator
from .layers.base import Layer
from .layers.compile_on_demand import EAGER, CompileOnDemandLayer, OnDemand
from .layers.ir_compile import IRCompileLayer
from .layers.ir_transform import IRTransformLayer
from .layers.redirection import RedirectionLayer
from .linking.reclaim import Reclaimer
from .linking.symbols import SymbolTable
from .native.stubs import Stub
from .options import EngineOptions


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

    def resolve_pending(self, name: str) -> int | None:
        """Names only code not linked yet defines (see RedirectionLayer)."""
        return self.on_demand.resolve(name) or self.local_fallbacks.get(name)

    def close(self) -> None:
        self.executor.close()
        self.stubs.close()


def build_stack(options: EngineOptions, target_machine: llvm.TargetMachine,
                mappings: Callable[[str], int | None], reclaimer: Reclaimer,
                on_unbound: Callable[[Stub], int]) -> Stack:
    """A stack for ``options``; ``on_unbound(stub)`` serves calls that reach a
    stub with no body (lazy compilation, removed functions)."""
    executor = options.executor.create(target_machine)
    stubs = executor.stub_manager(on_unbound)
    symbols = SymbolTable(stubs, strict=options.strict)
    redirection = RedirectionLayer(executor.linker, symbols, mappings, executor.resolve_process,
                                   policy=options.redirection, reclaimer=reclaimer)
    compiler = options.compiler
    if options.compile_workers:
        # behind a cache the workers start on the first miss (a warm run needs none)
        compiler = WorkerCompiler(options.compile_workers, fallback=compiler,
                                  start=options.cache_dir is None)
    if options.cache_dir is not None:
        compiler = CachingBackend(compiler, shared_store(options.cache_dir), describe_target)
    compile_layer = IRCompileLayer(target_machine, redirection, compiler=compiler,
                                   interposable=options.redirection.redirects,
                                   policy=options.redirection)
    ir: Layer = compile_layer
    transform = options.redirection.ir_transform(symbols.has_stub)
    if transform is not None:
        ir = IRTransformLayer(ir, transform)
    top: Layer = ir
    on_demand = EAGER
    if options.lazy:
        top = on_demand = CompileOnDemandLayer(ir, symbols, partition=options.partition,
                                               release_direct=redirection.release_direct)
    stack = Stack(executor, stubs, symbols, redirection, compile_layer, top, on_demand)
    redirection.set_pending_resolver(stack.resolve_pending)
    return stack
