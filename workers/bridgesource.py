"""The bridge's JavaScript: ``bridge.js`` and its parts (``bridge_<name>.js``).

Every context reads the bridge at its creation, so code that most contexts never
run is kept apart in parts (see ``bridgePart`` in bridge.js): each part is a
script whose completion value is one function of the intrinsics it uses.

- QuickJS (workers/engine.py) compiles the bridge and each part to bytecode once
  per process; a context reads a part's bytecode only when its bridge asks.
- Engines that compile from source (V8, workers/v8engine.py) take
  :func:`bridge_with_parts`: the bridge's installation is handed every part.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["BRIDGE_PARTS", "bridge_source", "part_source", "bridge_with_parts"]

_HERE = Path(__file__).parent

# The parts, by the name bridge.js asks for.
BRIDGE_PARTS = ("stack", "ops")

# How bridge.js ends: the installation, called with the global (and no parts).
_INSTALL_CALL = "})(globalThis);"


def bridge_source() -> str:
    return (_HERE / "bridge.js").read_text("utf-8")


def part_source(name: str) -> str:
    if name not in BRIDGE_PARTS:
        raise ValueError(f"no bridge part {name!r}")
    return (_HERE / f"bridge_{name}.js").read_text("utf-8")


def bridge_with_parts() -> str:
    """bridge.js with every part passed to its installation, as the object
    ``{__proto__: null, name: function, ...}``."""
    source = bridge_source().rstrip()
    if not source.endswith(_INSTALL_CALL):
        raise RuntimeError(f"bridge.js must end with {_INSTALL_CALL!r}")
    # Each part's text is an expression (comments, then a parenthesized function).
    parts = ", ".join(f"{name}: (\n{part_source(name).rstrip()}\n)" for name in BRIDGE_PARTS)
    return source[: -len(_INSTALL_CALL)] + "})(globalThis, { __proto__: null, " + parts + " });"
