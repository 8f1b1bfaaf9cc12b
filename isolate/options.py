"""Validation at the edge: every public option is checked here before anything reaches a worker.

Mirrors Node's ``lib/vm.js``: a bare string in place of options is the
filename; Node's camelCase keys are accepted in an options dict; each error
names the option, what was expected and what was received, and carries
Node's code (``ERR_INVALID_ARG_TYPE``, ``ERR_OUT_OF_RANGE``, ...).
"""

from __future__ import annotations

import re
import reprlib
from dataclasses import dataclass
from typing import Any, Iterable

from .errors import EngineUnavailableError, InvalidArgTypeError, InvalidArgValueError, OutOfRangeError

__all__ = ["RunOptions", "ContextOptions", "normalize_options", "describe", "check_code",
           "DEFAULT_FILENAME", "parse_size", "check_timeout", "check_int", "check_bool", "check_str",
           "check_choice", "plain", "fmt_number"]

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


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 40
_REPR.maxlevel = 2


def describe(value: Any) -> str:
    """How Node's error messages name a received value: ``type int (5)``.

    Never raises and stays short, whatever the value: a hostile ``__repr__``,
    an int past Python's digit limit or a huge container are all named
    without running (much) user code or building a huge string.
    """
    if value is None:
        return "None"
    try:
        name = type(value).__name__
        if not isinstance(name, str):
            raise TypeError
    except Exception:  # a metaclass with a hostile __name__
        name = "object"
    if isinstance(value, int) and not isinstance(value, bool):
        text = fmt_number(int.__int__(value))
    else:
        try:
            text = _REPR.repr(value)
            if not isinstance(text, str):
                raise TypeError
        except Exception:  # a hostile __repr__
            text = f"<{name} object>"
    if len(text) > 40:
        text = text[:37] + "..."
    return f"type {name} ({text})"


def fmt_number(value: Any) -> str:
    """An int or float for a message; an int past Python's digit limit by its size."""
    try:
        return str(plain(value))
    except ValueError:  # int too long for str() (sys.get_int_max_str_digits)
        return f"an integer of {int.__int__(value).bit_length()} bits"


def plain(value: Any) -> Any:
    """``value`` as an exact ``str``/``int``/``float`` when it is an instance of a subclass of one.

    Validation then works on a copy no user override can touch again (a str
    subclass with a raising ``__eq__``, an int subclass whose comparisons
    raise...). Other values are returned as they are.
    """
    t = type(value)
    if t is str or t is int or t is float or t is bool:
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, str):
        return str.__str__(value)
    return value


def _short(text: str, limit: int = 40) -> str:
    """``repr`` of a str for a message, cut to ``limit`` characters."""
    text = repr(str.__str__(text) if isinstance(text, str) else text)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _dict_items(value: dict, name: str) -> list:
    """The items stored in a dict (a subclass's own ``items``/``keys``/``__iter__`` are not called)."""
    try:
        return list(dict.items(value))
    except Exception as exc:  # pragma: no cover - dict.items on a dict does not fail
        raise InvalidArgValueError(f'The "{name}" argument could not be read: {type(exc).__name__}') from None


def normalize_options(options: Any, kwargs: dict, argname: str = "options") -> dict:
    """Merge the positional ``options`` (str filename, dict, or None) with keyword options.

    Node's camelCase keys are renamed to ours. An option given twice (as
    ``lineOffset`` and ``line_offset``, or in the dict and as a keyword) is
    ambiguous and refused.
    """
    merged: dict = {}
    given_as: dict = {}   # our name -> how the caller spelled it where, for the error

    def put(key: str, value: Any, where: str) -> None:
        name = _CAMEL.get(key, key)
        spelled = f"{_cut(key)} ({where})"
        if name in merged:
            raise InvalidArgValueError(
                f"The property '{argname}.{_cut(name)}' is given twice: as {given_as[name]} and as {spelled}. "
                f"Received {describe(value)}")
        merged[name] = value
        given_as[name] = spelled

    if options is None:
        pass
    elif isinstance(options, str):
        merged["filename"] = plain(options)
        given_as["filename"] = f"the {argname} string"
    elif isinstance(options, dict):
        for key, value in _dict_items(options, argname):
            if not isinstance(key, str):
                raise InvalidArgTypeError(
                    f'The "{argname}" keys must be of type str. Received {describe(key)}')
            put(plain(key), value, f"in the {argname} dict")
    else:
        raise InvalidArgTypeError(
            f'The "{argname}" argument must be of type dict or str. Received {describe(options)}')
    for key, value in _dict_items(kwargs, "kwargs"):
        put(plain(key), value, "a keyword argument")
    return merged


def _cut(key: str, limit: int = 60) -> str:
    return key if len(key) <= limit else key[:limit - 3] + "..."


def check_code(code: Any, name: str = "code") -> str:
    if not isinstance(code, str):
        raise InvalidArgTypeError(f'The "{name}" argument must be of type str. Received {describe(code)}')
    return plain(code)


def _check_str(opts: dict, key: str, default: str | None) -> str | None:
    return check_str(opts.pop(key, default), f"options.{key}", default)


def check_str(value: Any, name: str, default: str | None = None) -> str | None:
    """A str option (None: ``default``), as an exact ``str``."""
    if value is None:
        return default
    if not isinstance(value, str):
        raise InvalidArgTypeError(f'The "{name}" {_what(name)} must be of type str. Received {describe(value)}')
    return plain(value)


def _check_bool(opts: dict, key: str, default: bool) -> bool:
    return check_bool(opts.pop(key, default), f"options.{key}", default)


def check_bool(value: Any, name: str, default: bool | None = None) -> bool | None:
    """A bool option (None: ``default``): ``True``/``False`` only, not 0, 1 or "yes"."""
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidArgTypeError(f'The "{name}" {_what(name)} must be of type bool. Received {describe(value)}')
    return value


def _check_int(opts: dict, key: str, default: int, minimum: int, maximum: int) -> int:
    value = opts.pop(key, default)
    if value is None:
        return default
    return check_int(value, f"options.{key}", minimum, maximum)


def check_int(value: Any, name: str, minimum: int, maximum: int, *, integral_floats: bool = True) -> int:
    """An int from ``minimum`` to ``maximum`` (a float that is an integer counts, as in Node;
    ``True``/``False`` do not), as an exact ``int``."""
    value = plain(value)
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and integral_floats and value.is_integer():
            value = int(value)
        elif isinstance(value, float) and integral_floats:  # a number, not an integer: Node says range
            raise OutOfRangeError(
                f'The value of "{name}" is out of range. It must be an integer. Received {value}')
        else:
            raise InvalidArgTypeError(
                f'The "{name}" {_what(name)} must be of type int. Received {describe(value)}')
    if not minimum <= value <= maximum:
        raise OutOfRangeError(
            f'The value of "{name}" is out of range. It must be >= {minimum} && <= {maximum}. '
            f"Received {fmt_number(value)}")
    return value


def check_choice(value: Any, name: str, choices: tuple) -> str:
    """A str that must be one of ``choices`` (strs), as an exact ``str``."""
    if not isinstance(value, str):
        raise InvalidArgTypeError(f'The "{name}" {_what(name)} must be of type str. Received {describe(value)}')
    value = plain(value)
    if value not in choices:
        raise InvalidArgValueError(
            f"The {_what(name)} '{name}' must be one of: {', '.join(map(repr, choices))}. Received {_short(value)}")
    return value


# The engines a pool can run (workers/engine_api.py), and the extra each one needs.
ENGINES = ("quickjs", "v8")
ENGINE_EXTRAS = {"v8": ("STPyV8", "v8")}


def check_engine(value: Any) -> str:
    """``Pool(engine=...)``: a known engine whose binding is installed."""
    engine = check_choice(value, "engine", ENGINES)
    needed = ENGINE_EXTRAS.get(engine)
    if needed is not None:
        import importlib.util

        module, extra = needed
        if importlib.util.find_spec(module) is None:  # found, not imported: V8 starts only in workers
            raise EngineUnavailableError(
                f"the {engine!r} engine needs the {module} binding, which is not installed: "
                f"pip install 'isolate-vm[{extra}]'")
    return engine


def _what(name: str) -> str:
    return "property" if name.startswith("options.") else "argument"


def _check_timeout(opts: dict, key: str = "timeout") -> int | float | None:
    return check_timeout(opts.pop(key, None), f"options.{key}", allow_inf=key == "queue_timeout")


def check_timeout(value: Any, name: str, allow_inf: bool = False) -> int | float | None:
    """A timeout in ms: an integer from 1 to 2**32-1 (Node's range), or None.

    ``allow_inf`` also takes ``math.inf`` (a queue timeout of "wait as long
    as it takes").
    """
    if value is None:
        return None
    value = plain(value)
    what = _what(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgTypeError(f'The "{name}" {what} must be of type int. Received {describe(value)}')
    if allow_inf and value == float("inf"):
        return float("inf")
    if isinstance(value, float) and not value.is_integer():
        raise OutOfRangeError(f'The value of "{name}" is out of range. It must be an integer. Received {value}')
    if not 1 <= value <= MAX_TIMEOUT_MS:
        raise OutOfRangeError(
            f'The value of "{name}" is out of range. It must be >= 1 && <= {MAX_TIMEOUT_MS}'
            f'{" (or math.inf)" if allow_inf else ""}. Received {fmt_number(value)}')
    return int(value)


_MICROTASK_MODES = ("afterEvaluate",)


def _check_microtask_mode(opts: dict, key: str) -> str | None:
    value = opts.pop(key, None)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidArgTypeError(
            f'The "options.{key}" property must be of type str. Received {describe(value)}')
    value = plain(value)
    if value not in _MICROTASK_MODES:
        raise InvalidArgValueError(
            f"The property 'options.{key}' must be one of: 'afterEvaluate', None. Received {_short(value)}")
    return value


def _check_code_generation(opts: dict, key: str) -> dict | None:
    value = opts.pop(key, None)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidArgTypeError(
            f'The "options.{key}" property must be of type dict. Received {describe(value)}')
    checked = {}
    for sub, sub_value in _dict_items(value, f"options.{key}"):
        if not isinstance(sub, str) or plain(sub) not in ("strings", "wasm"):
            raise InvalidArgValueError(
                f"The property 'options.{key}' accepts only 'strings' and 'wasm'. Received {describe(sub)}")
        sub = plain(sub)
        if not isinstance(sub_value, bool):
            raise InvalidArgTypeError(
                f'The "options.{key}.{sub}" property must be of type bool. Received {describe(sub_value)}')
        checked[sub] = sub_value
    return checked


def _reject_unknown(opts: dict, what: str) -> None:
    if opts:
        key = next(iter(opts))
        raise InvalidArgValueError(f"The property 'options.{_cut(str(key))}' is not a known option of {what}. "
                                   f"Received {describe(opts[key])}")


def _reject_unsupported(opts: dict, keys: Iterable[str], why: str) -> None:
    for key in keys:
        value = opts.get(key)
        if value is not None and value is not False:
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
    value = plain(value)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidArgTypeError(
            f'The "{name}" option must be an int (bytes) or a str like "64MB". Received {describe(value)}')
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", value)
        if not m or m.group(2).lower() not in _SIZE_UNITS:
            raise InvalidArgValueError(
                f'The "{name}" option must be a size like "64MB", "512KB" or "1GB". Received {_short(value)}')
        number = float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()]
        if number > MAX_MEMORY_LIMIT:
            raise OutOfRangeError(
                f'The value of "{name}" is out of range. It must be <= {MAX_MEMORY_LIMIT} bytes. Received {_short(value)}')
        value = int(number)
    if not minimum <= value <= MAX_MEMORY_LIMIT:
        raise OutOfRangeError(
            f'The value of "{name}" is out of range. It must be >= {minimum} && <= {MAX_MEMORY_LIMIT} bytes. '
            f"Received {fmt_number(value)}")
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
    try:
        return bytes(memoryview(value))  # the buffer itself: a subclass's __bytes__ is not called
    except (TypeError, ValueError) as exc:  # a released memoryview
        raise InvalidArgValueError(f'The "options.{key}" property could not be read: {exc}') from None


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
