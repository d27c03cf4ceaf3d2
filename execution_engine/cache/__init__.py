"""The persistent object cache: object files on disk, keyed by what made them.

* :mod:`.keys`: :func:`object_key`, a digest of the IR as compiled, the
  target description and the toolchain versions;
* :mod:`.entry`: the verified on-disk format of one entry;
* :mod:`.store`: :class:`ObjectStore`, a directory of entries with a size
  bound, safe for several threads and processes, degrading to "no cache";
* :mod:`.stats`: counters and the history of recent runs;
* :mod:`.layer`: :class:`CachingCompiler` (a compile callable) and
  :class:`CachingBackend` (a compile backend) with a store in front;
* :mod:`.cli`: ``python -m execution_engine cache info|clear`` and the default directory.
"""

from .keys import OBJECT_FORMAT_VERSION, module_ir, object_key
from .layer import CachingBackend, CachingCompiler
from .stats import CacheStats
from .store import DEFAULT_MAX_BYTES, ObjectStore

__all__ = [
    "DEFAULT_MAX_BYTES",
    "OBJECT_FORMAT_VERSION",
    "CacheStats",
    "CachingBackend",
    "CachingCompiler",
    "ObjectStore",
    "module_ir",
    "object_key",
]
