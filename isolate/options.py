"""Validation at the edge: every public option is checked here before anything reaches a worker.

Mirrors Node's ``lib/vm.js``: a bare string in place of options is the
filename; Node's camelCase keys are accepted in an options dict; each error
names the option, what was expected and what was received, and carries
Node's code (``ERR_INVALID_ARG_TYPE``, ``ERR_OUT_OF_RANGE``, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

from .errors import InvalidArgTypeError, InvalidArgValueError, OutOfRangeError

__all__ = ["RunOptions", "ContextOptions", "normalize_options", "describe", "check_code",
           "DEFAULT_FILENAME", "parse_size", "check_timeout"]

DEFAULT_FILENAME = "evalmachine.<anonymous>"

# Node's spelling -> ours, for options dicts ported from JavaScript.
_CAMEL = {
    "lineOffset": "line_offset", "columnOffset": "column_offset", "displayErrors": "display_errors",
    "breakOnSigint": "break_on_sigint", "contextName": "context_name",
    "contextOrigin": "context_origin", "contextCodeGeneration": "context_code_generation",
    "codeGeneration": "code_generation", "microtaskMode": "microtask_mode",
    "cachedData": "cached_data", "produceCachedData": "produce_cached_data",
    "importModuleDynamically": "import_module_dynamically", "parsingContext": "parsing_context",
    "contextExtensions": "context_extensions", "queueTimeout": "queue_timeout",
}

# The largest timeout setitimer takes without overflow, as Node's uint32 limit.
MAX_TIMEOUT_MS = 2**32 - 1


def describe(value: Any) -> str:
    """How Node's error messages name a received value: ``type int (5)``."""
    if value is None:
        return "None"
    try:
        text = repr(value)
    except Exception:  # a hostile __repr__, or an int past Python's digit limit
        text = f"<{type(value).__name__} object>"
    if len(text) > 40:
        text = text[:37] + "..."
    return f"type {type(value).__name__} ({text})"


def normalize_options(options: Any, kwargs: dict, argname: str = "options") -> dict:
    """Merge the positional ``options`` (str filename, dict, or None) with keyword options."""
    if options is None:
        merged: dict = {}
    elif isinstance(options, str):
        merged = {"filename": options}
    elif isinstance(options, dict):
        merged = {}
        for key, value in options.items():
            if not isinstance(key, str):
                raise InvalidArgTypeError(
                    f'The "{argname}" keys must be of type str. Received {describe(key)}')
            merged[_CAMEL.get(key, key)] = value
    else:
        raise InvalidArgTypeError(
            f'The "{argname}" argument must be of type dict or str. Received {describe(options)}')
    for key, value in kwargs.items():
        merged[key] = value
    return merged


def check_code(code: Any, name: str = "code") -> str:
    if not isinstance(code, str):
        raise InvalidArgTypeError(f'The "{name}" argument must be of type str. Received {describe(code)}')
    return code


def _check_str(opts: dict, key: str, default: str | None) -> str | None:
    value = opts.pop(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise InvalidArgTypeError(f'The "options.{key}" property must be of type str. Received {describe(value)}')
    return value


def _check_bool(opts: dict, key: str, default: bool) -> bool:
    value = opts.pop(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidArgTypeError(f'The "options.{key}" property must be of type bool. Received {describe(value)}')
    return value


def _check_int(opts: dict, key: str, default: int, minimum: int, maximum: int) -> int:
    value = opts.pop(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        elif isinstance(value, float):  # a number, but not an integer: Node's validateInt32 says range
            raise OutOfRangeError(
                f'The value of "options.{key}" is out of range. It must be an integer. Received {value}')
        else:
            raise InvalidArgTypeError(
                f'The "options.{key}" property must be of type int. Received {describe(value)}')
    if not minimum <= value <= maximum:
        raise OutOfRangeError(
            f'The value of "options.{key}" is out of range. It must be >= {minimum} && <= {maximum}. '
            f"Received {value}")
    return value


def _check_timeout(opts: dict, key: str = "timeout") -> int | float | None:
    return check_timeout(opts.pop(key, None), f"options.{key}", allow_inf=key == "queue_timeout")


def check_timeout(value: Any, name: str, allow_inf: bool = False) -> int | float | None:
    """A timeout in ms: an integer from 1 to 2**32-1 (Node's range), or None.

    ``allow_inf`` also takes ``math.inf`` (a queue timeout of "wait as long
    as it takes").
    """
    if value is None:
        return None
    what = "property" if name.startswith("options.") else "argument"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgTypeError(f'The "{name}" {what} must be of type int. Received {describe(value)}')
    if allow_inf and value == float("inf"):
        return float("inf")
    if isinstance(value, float) and not value.is_integer():
        raise OutOfRangeError(f'The value of "{name}" is out of range. It must be an integer. Received {value}')
    if not 1 <= value <= MAX_TIMEOUT_MS:
        raise OutOfRangeError(
            f'The value of "{name}" is out of range. It must be >= 1 && <= {MAX_TIMEOUT_MS}'
            f'{" (or math.inf)" if allow_inf else ""}. Received {value}')
    return int(value)


_MICROTASK_MODES = ("afterEvaluate",)


def _check_microtask_mode(opts: dict, key: str) -> str | None:
    value = opts.pop(key, None)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidArgTypeError(
            f'The "options.{key}" property must be of type str. Received {describe(value)}')
    if value not in _MICROTASK_MODES:
        raise InvalidArgValueError(
            f"The property 'options.{key}' must be one of: 'afterEvaluate', None. Received {value!r}")
    return value


def _check_code_generation(opts: dict, key: str) -> dict | None:
    value = opts.pop(key, None)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidArgTypeError(
            f'The "options.{key}" property must be of type dict. Received {describe(value)}')
    for sub, sub_value in value.items():
        if sub not in ("strings", "wasm"):
            raise InvalidArgValueError(
                f"The property 'options.{key}' accepts only 'strings' and 'wasm'. Received {sub!r}")
        if not isinstance(sub_value, bool):
            raise InvalidArgTypeError(
                f'The "options.{key}.{sub}" property must be of type bool. Received {describe(sub_value)}')
    return dict(value)


def _reject_unknown(opts: dict, what: str) -> None:
    if opts:
        key = next(iter(opts))
        raise InvalidArgValueError(f"The property 'options.{key}' is not a known option of {what}. "
                                   f"Received {describe(opts[key])}")


def _reject_unsupported(opts: dict, keys: Iterable[str], why: str) -> None:
    for key in keys:
        if opts.get(key) not in (None, False):
            raise InvalidArgValueError(f"The property 'options.{key}' is not supported yet: {why}. "
                                       f"Received {describe(opts[key])}")
        opts.pop(key, None)


@dataclass(frozen=True)
class CompileOptions:
    filename: str = DEFAULT_FILENAME
    line_offset: int = 0
    column_offset: int = 0
    display_errors: bool = True
    cached_data: bytes | None = None
    produce_cached_data: bool = False
    # A callable or constants.USE_MAIN_CONTEXT_DEFAULT_LOADER: what resolves import() (isolate.modules).
    import_module_dynamically: Any = None


@dataclass(frozen=True)
class RunOptions:
    timeout: int | None = None
    break_on_sigint: bool = False
    display_errors: bool = True
    # How long the call may wait for its worker before it starts (ms; inf: no
    # bound); None: the pool's default, else the call's own timeout.
    queue_timeout: float | None = None


@dataclass(frozen=True)
class ContextOptions:
    name: str | None = None
    origin: str = ""
    code_generation: dict | None = None
    microtask_mode: str | None = None
    memory_limit: int | None = None


_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2,
               "mib": 1024**2, "g": 1024**3, "gb": 1024**3, "gib": 1024**3}
# Below this a QuickJS runtime cannot even build its exceptions.
MIN_MEMORY_LIMIT = 1024 * 1024
# Above this no machine has the memory, and every layer below (msgpack, size_t,
# rlimits) still represents the number exactly.
MAX_MEMORY_LIMIT = 2**53 - 1


def parse_size(value: Any, name: str, minimum: int = MIN_MEMORY_LIMIT) -> int | None:
    """Bytes from an int or a string like ``"64MB"`` (units are binary: 1 MB = 1024 KB)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidArgTypeError(
            f'The "{name}" option must be an int (bytes) or a str like "64MB". Received {describe(value)}')
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", value)
        if not m or m.group(2).lower() not in _SIZE_UNITS:
            raise InvalidArgValueError(
                f'The "{name}" option must be a size like "64MB", "512KB" or "1GB". Received {value!r}')
        number = float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()]
        if number > MAX_MEMORY_LIMIT:
            raise OutOfRangeError(
                f'The value of "{name}" is out of range. It must be <= {MAX_MEMORY_LIMIT} bytes. Received {value!r}')
        value = int(number)
    if not minimum <= value <= MAX_MEMORY_LIMIT:
        raise OutOfRangeError(
            f'The value of "{name}" is out of range. It must be >= {minimum} && <= {MAX_MEMORY_LIMIT} bytes. '
            f"Received {value}")
    return value


_INT32 = 2**31 - 1


def compile_options(opts: dict, default_filename: str = DEFAULT_FILENAME) -> CompileOptions:
    """Pop the compile-time options out of ``opts``."""
    return CompileOptions(
        filename=_check_str(opts, "filename", default_filename),
        line_offset=_check_int(opts, "line_offset", 0, -_INT32, _INT32),
        column_offset=_check_int(opts, "column_offset", 0, -_INT32, _INT32),
        display_errors=_check_bool(opts, "display_errors", True),
        cached_data=_check_bytes(opts, "cached_data"),
        produce_cached_data=_check_bool(opts, "produce_cached_data", False),
        import_module_dynamically=check_import_module_dynamically(opts),
    )


def check_import_module_dynamically(opts: dict):
    """Pop ``import_module_dynamically``: a callable, USE_MAIN_CONTEXT_DEFAULT_LOADER, or None."""
    from .constants import USE_MAIN_CONTEXT_DEFAULT_LOADER

    value = opts.pop("import_module_dynamically", None)
    if value is None or value is USE_MAIN_CONTEXT_DEFAULT_LOADER or callable(value):
        return value
    raise InvalidArgTypeError(
        # Node's words; isolate.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER is accepted too.
        f'The "options.importModuleDynamically" property must be of type function. Received {describe(value)}')


def _check_bytes(opts: dict, key: str) -> bytes | None:
    value = opts.pop(key, None)
    if value is None:
        return None
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise InvalidArgTypeError(
            f'The "options.{key}" property must be an instance of bytes, bytearray or memoryview '
            f"(Node: Buffer, TypedArray, or DataView). Received {describe(value)}")
    return bytes(value)


def run_options(opts: dict) -> RunOptions:
    """Pop the run-time options out of ``opts``."""
    return RunOptions(
        timeout=_check_timeout(opts),
        break_on_sigint=_check_bool(opts, "break_on_sigint", False),
        display_errors=_check_bool(opts, "display_errors", True),
        queue_timeout=_check_timeout(opts, "queue_timeout"),
    )


def context_options(opts: dict, prefix: str = "") -> ContextOptions:
    """Pop context options (``name``...; or ``context_name``... when ``prefix="context_"``)."""
    name = _check_str(opts, f"{prefix}name", None)
    origin = _check_str(opts, f"{prefix}origin", "")
    code_generation = _check_code_generation(opts, f"{prefix}code_generation")
    microtask_mode = _check_microtask_mode(opts, "microtask_mode")
    memory_limit = parse_size(opts.pop("memory_limit", None), "options.memoryLimit")
    if origin and not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/]*$", origin):
        raise InvalidArgValueError(
            f"The property 'options.{prefix}origin' must be an origin like 'https://example.com' "
            f"(scheme, host and port only). Received {origin!r}")
    return ContextOptions(name=name, origin=origin, code_generation=code_generation,
                          microtask_mode=microtask_mode, memory_limit=memory_limit)


def finish(opts: dict, what: str) -> None:
    _reject_unknown(opts, what)
