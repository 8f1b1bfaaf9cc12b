"""The default pool, reachable from every layer without importing the pool's module.

The pool (isolate.pool) sits above the API it offers as methods; the API's
module-level functions and ``Script()`` without a ``pool`` need "the default
pool" all the same. The pool class registers itself here when its module is
imported, so lower layers ask this module and never import back up.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["default_pool", "register_pool_class", "is_pool"]

_pool_class: Any = None
_default: Any = None
_lock = threading.Lock()


def register_pool_class(cls: type) -> None:
    """Called once by isolate.pool: the class ``default_pool()`` instantiates."""
    global _pool_class
    _pool_class = cls


def is_pool(obj: Any) -> bool:
    return _pool_class is not None and isinstance(obj, _pool_class)


def default_pool():
    """The pool behind the module-level functions (one worker per CPU), started on first use."""
    global _default
    with _lock:
        if _default is None or _default.closed:
            if _pool_class is None:  # only if isolate.pool was never imported: import it now
                from importlib import import_module

                import_module(__package__ + ".pool")
            _default = _pool_class()
        return _default
