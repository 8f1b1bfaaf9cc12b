"""8. Compile once and cached data: constructing a ~1 MB ``Script``.

- isolate: ``Script(code)`` (compiles in a worker's scratch context and keeps the
  bytecode there) against ``Script(code, cached_data=data)`` (verifies the HMAC
  and loads nothing until a worker first runs it). Each plain construction gets
  a fresh text (a trailing comment), as the workers cache compiled scripts by
  content.
- Node: ``new vm.Script(code)`` against ``new vm.Script(code, {cachedData})``.

Runs are interleaved; the median of each is reported.
"""

from __future__ import annotations

import time

from .harness import node_path, percentile, run_node

SECTION = "Compile a 1 MB script"
ENTRIES, FUNCTIONS = 120_000, 8_000
PLAIN = "isolate Script(code)"
CACHED = "isolate Script(code, cached_data=...)"


def make(salt) -> str:
    return ("var table = [" + ",".join(str(i) for i in range(ENTRIES)) + "];\n"
            + "".join(f"function g{i}(x) {{ return x * {i} + table.length; }}\n" for i in range(FUNCTIONS))
            + f"table.length // {salt}")


def run(suite):
    import isolate

    n = suite.scale(15, 3)
    plain, cached = [], []
    with isolate.Pool(size=1) as pool:
        code = make("cache")
        data = isolate.Script(code, produce_cached_data=True, pool=pool).cached_data
        for i in range(n):
            text = make(i)
            t0 = time.perf_counter()
            isolate.Script(text, pool=pool)
            plain.append((time.perf_counter() - t0) * 1e3)
            t0 = time.perf_counter()
            script = isolate.Script(code, cached_data=data, pool=pool)
            cached.append((time.perf_counter() - t0) * 1e3)
            if script.cached_data_rejected:
                raise RuntimeError("isolate rejected its own cached data")
        assert script.run_in_context(pool.create_context()) == ENTRIES
    suite.add(SECTION, PLAIN, "ms", plain, ref=True, note=f"{len(code) / 1e6:.2f} MB of source")
    suite.add(SECTION, CACHED, "ms", cached, note=f"{len(data) / 1e6:.2f} MB of cached data")
    if node_path():
        node = run_node("compile", n=n, entries=ENTRIES, functions=FUNCTIONS)
        suite.add(SECTION, "node new vm.Script(code)", "ms", node["plain_ms"])
        suite.add(SECTION, "node new vm.Script(code, {cachedData})", "ms", node["cached_ms"])
    else:
        suite.skip("node not on PATH: vm.Script compile baseline skipped")
    ratio = percentile(cached, 50) / percentile(plain, 50)
    suite.target("cached_data", SECTION, "construction with cached data ≤ 0.5× without", ratio, 0.5, "<=",
                 detail=f"{percentile(cached, 50):.1f} ms vs {percentile(plain, 50):.1f} ms")
