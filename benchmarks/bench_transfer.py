"""7. Transfer: a ~10 MB nested JSON-like object into a context and back out (2 MB with --quick).

Size is ``len(json.dumps(obj))``; MB/s = that size (MB = 10^6 bytes) ÷ wall time.

- isolate in: ``ctx['data'] = obj``; out: ``pool.run_in_context('data', ctx)``.
- dukpy in-process in: ``eval_string(host, "globalThis.data = dukpy.data", jsvars)``
  (dukpy's way to pass values: JSON text in ``jsvars``, ``json.dumps`` included);
  out: ``eval_string(host, "data")`` → JSON text → ``json.loads``.
- For scale: ``msgpack.packb`` + ``unpackb`` of the object in-process (the wire
  codec alone, no process boundary, no engine).
"""

from __future__ import annotations

import json
import random
import time

import isolate

from .harness import DukpyHost, interleave, percentile

SECTION_IN = "Transfer in"
SECTION_OUT = "Transfer out"
TARGET_MB_S = 30.0  # issue 14: each way


def make_object(target_mb: float = 10.0, seed: int = 11):
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
    records = []
    obj = {"meta": {"generator": "benchmarks", "version": 1}, "records": records}
    size, i = 0, 0
    while size < target_mb * 1e6:
        rec = {"id": i, "name": " ".join(rng.choices(words, k=3)), "score": rng.random() * 100,
               "flags": [rng.random() < 0.5 for _ in range(4)], "count": rng.randint(0, 10**6),
               "nested": {"a": rng.choice(words), "b": [rng.randint(0, 999) for _ in range(5)],
                          "c": {"deep": rng.random() < 0.1, "label": f"r{i}"}},
               "note": None if i % 3 else "x" * rng.randint(10, 60)}
        records.append(rec)
        size += len(json.dumps(rec)) + 2
        i += 1
    return obj




def run(suite):
    from dukpy import _dukpy
    import msgpack

    obj = make_object(10.0 if not suite.quick else 2.0)
    mb = len(json.dumps(obj)) / 1e6
    suite.raw["transfer_mb"] = mb
    reps = suite.scale(3, 1)
    # A global's write is bounded by Limits.access_timeout_s (1 s by default), which
    # counts the conversion too: 10 MB takes longer than that at today's rates.
    with isolate.Pool(size=1, limits=isolate.Limits(access_timeout_s=120)) as pool:
        ctx = pool.create_context()
        host = DukpyHost()

        def rate(fn):
            def run(n):
                out = []
                for _ in range(n):
                    t0 = time.perf_counter()
                    fn()
                    out.append(mb / (time.perf_counter() - t0))
                return out
            return run

        def iso_in():
            ctx["data"] = obj

        def iso_out():
            back = pool.run_in_context("data", ctx)
            assert len(back["records"]) == len(obj["records"])

        def duk_in():
            jsvars = json.dumps({"data": obj}).encode()
            _dukpy.eval_string(host, b"globalThis.data = dukpy.data; null", jsvars, False, "<bench>")

        def duk_out():
            back = json.loads(_dukpy.eval_string(host, b"data", b"null", False, "<bench>"))
            assert len(back["records"]) == len(obj["records"])

        def codec():
            msgpack.unpackb(msgpack.packb(obj))

        duk_in()
        iso_in()
        samples = interleave({
            "in: isolate ctx['data'] = obj": rate(iso_in),
            "in: dukpy in-process, JSON jsvars": rate(duk_in),
            "out: isolate pool.run_in_context('data', ctx)": rate(iso_out),
            "out: dukpy in-process, JSON result + json.loads": rate(duk_out),
            "msgpack packb+unpackb in-process (codec floor, both ways)": rate(codec),
        }, reps, reps)
    for name, xs in samples.items():
        section = SECTION_IN if name.startswith("in:") else SECTION_OUT
        suite.add(section, name, "MB/s", xs, ref=name.startswith(("in: isolate", "out: isolate")),
                  note=f"{mb:.1f} MB")
    suite.raw["transfer_mb_per_s"] = samples
    for way, name, duk in (("in", "in: isolate ctx['data'] = obj", "in: dukpy in-process, JSON jsvars"),
                           ("out", "out: isolate pool.run_in_context('data', ctx)",
                            "out: dukpy in-process, JSON result + json.loads")):
        rate_mb = percentile(samples[name], 50)
        suite.target(f"transfer_{way}", SECTION_IN if way == "in" else SECTION_OUT,
                     f"a {mb:.0f} MB nested object {way} ≥ {TARGET_MB_S:.0f} MB/s", rate_mb, TARGET_MB_S, ">=",
                     unit=" MB/s", detail=f"in-process dukpy {percentile(samples[duk], 50):.1f} MB/s")
