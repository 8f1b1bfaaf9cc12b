"""The keyword options of every public function, as ``TypedDict``s for type checkers and IDEs.

The public functions take their options as ``**options: Unpack[...]`` (PEP
692), so an editor completes ``timeout=`` and a type checker flags
``timeout="5"`` or a misspelt ``tiemout=``. The names are the snake_case ones
(Node's camelCase spelling is for the positional options dict, typed
:data:`OptionsArg`). Nothing here runs at call time: every value is still
checked by :mod:`isolate.options`, which raises typed errors (a wrong type is
``InvalidArgTypeError``, an unknown option ``InvalidArgValueError``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypedDict, Union

if TYPE_CHECKING:
    from .context import Context

__all__ = [
    "OptionsArg", "CodeGeneration", "CompileKwargs", "RunKwargs", "RunCodeKwargs", "NewContextKwargs",
    "CreateContextKwargs", "ScriptKwargs", "ScriptNewContextKwargs", "CompileFunctionKwargs", "MapKwargs",
    "BatchKwargs", "SourceTextModuleKwargs", "SyntheticModuleKwargs",
    "MeasureMemoryKwargs",
]

# The positional options: a str (the filename) or a dict (Node's camelCase keys are accepted).
OptionsArg = Union[str, Mapping[str, Any], None]

# A size in bytes, or a str such as "64MB" (binary units).
Size = Union[int, str]

# import_module_dynamically: a callable (specifier, referrer, attributes) -> Module, or
# isolate.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER.
DynamicImport = Union[Callable[..., Any], object]


class CodeGeneration(TypedDict, total=False):
    strings: bool
    wasm: bool


class CompileKwargs(TypedDict, total=False):
    """Compile-time options (``Script``, ``compile_function``, the ``run_in_*`` functions)."""

    filename: str
    line_offset: int
    column_offset: int
    display_errors: bool
    cached_data: bytes | bytearray | memoryview
    produce_cached_data: bool
    import_module_dynamically: DynamicImport


class RunKwargs(TypedDict, total=False):
    """Run-time options: ``timeout`` and ``queue_timeout`` in milliseconds (``math.inf``: no bound)."""

    timeout: int | None
    break_on_sigint: bool
    display_errors: bool
    queue_timeout: float | None


class _NewContextOnly(TypedDict, total=False):
    context_name: str
    context_origin: str
    context_code_generation: CodeGeneration
    microtask_mode: Literal["afterEvaluate"] | None
    memory_limit: Size | None


class RunCodeKwargs(CompileKwargs, RunKwargs, total=False):
    """``run_in_context`` and ``run_in_this_context``."""


class NewContextKwargs(RunCodeKwargs, _NewContextOnly, total=False):
    """``run_in_new_context`` and ``Pool.submit``."""


class ScriptKwargs(CompileKwargs, total=False):
    """``Script(code, ...)``."""


class ScriptNewContextKwargs(RunKwargs, _NewContextOnly, total=False):
    """``Script.run_in_new_context``."""


class CreateContextKwargs(TypedDict, total=False):
    """``create_context``."""

    name: str | None
    origin: str
    code_generation: CodeGeneration | None
    microtask_mode: Literal["afterEvaluate"] | None
    memory_limit: Size | None
    import_module_dynamically: DynamicImport


class CompileFunctionKwargs(CompileKwargs, total=False):
    """``compile_function``."""

    parsing_context: "Context | dict[str, Any] | None"
    context_extensions: Sequence[dict[str, Any]]


class MapKwargs(CompileKwargs, _NewContextOnly, total=False):
    """``Pool.map`` beyond its named parameters (each call runs as ``submit``)."""

    break_on_sigint: bool
    queue_timeout: float | None


class BatchKwargs(TypedDict, total=False):
    """``Pool.run_batch``."""

    script: Any   # an isolate.Script, or source text run over every job
    timeout: int | None
    memory_limit: Size | None
    retries: int
    ordered: bool
    max_in_flight: int | None
    filename: str | None
    queue_timeout: float | None


class SourceTextModuleKwargs(TypedDict, total=False):
    """``SourceTextModule(code, ...)``."""

    identifier: str | None
    context: "Context | dict[str, Any] | None"
    line_offset: int
    column_offset: int
    cached_data: bytes | bytearray | memoryview | None
    initialize_import_meta: Callable[..., Any] | None
    import_module_dynamically: DynamicImport


class SyntheticModuleKwargs(TypedDict, total=False):
    """``SyntheticModule(export_names, evaluate_callback, ...)``."""

    identifier: str | None
    context: "Context | dict[str, Any] | None"


class MeasureMemoryKwargs(TypedDict, total=False):
    """``measure_memory`` (Node's options object, spelled as keywords)."""

    mode: Literal["summary", "detailed"]
    execution: Literal["default", "eager"]


JobInput = Iterable[Mapping[str, Any]]
