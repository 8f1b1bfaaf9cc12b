"""``vm.constants``: symbols that stand for behaviours rather than values.

``USE_MAIN_CONTEXT_DEFAULT_LOADER``: as ``import_module_dynamically``, resolve
``import()`` with the pool's default loader (files under the loader's root).

``DONT_CONTEXTIFY``: as the context object of ``create_context``, make a
context whose global is an ordinary object (Node 22+), not a contextified one.
"""

from __future__ import annotations

__all__ = ["USE_MAIN_CONTEXT_DEFAULT_LOADER", "DONT_CONTEXTIFY"]


class _Constant:
    __slots__ = ("_name",)

    def __init__(self, name: str):
        self._name = name

    def __repr__(self) -> str:
        return f"isolate.constants.{self._name}"

    def __reduce__(self):  # pickles as the same singleton
        return self._name


USE_MAIN_CONTEXT_DEFAULT_LOADER = _Constant("USE_MAIN_CONTEXT_DEFAULT_LOADER")
DONT_CONTEXTIFY = _Constant("DONT_CONTEXTIFY")
