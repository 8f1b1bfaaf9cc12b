"""The batch runner on a Dask cluster: an isolate pool in every Dask worker.

Where it sits::

    DaskPool (client side)   chunks jobs, streams them to the cluster, yields the records
        │ distributed.Client: one Dask task per chunk (a few hundred jobs), deterministic key
        ▼
    Dask worker ── IsolatePoolPlugin ── Pool (isolate.pool) ── zygote ── isolate workers

* :class:`IsolatePoolPlugin` (a ``distributed.WorkerPlugin``, registered
  through the client, so workers that join or come back after a nanny
  restart get it too) starts one isolate :class:`~isolate.Pool` per Dask
  worker at setup and closes it at teardown. Dask worker processes are
  daemonic; that is fine because a pool never forks its own process: its
  workers come from a zygote it execs (isolate.zygote), which dies with the
  Dask worker (PDEATHSIG) and takes its workers with it.
* A chunk is one Dask task: the Dask worker runs it through its pool's own
  ``run_batch``, so a record is exactly what :meth:`Pool.run_batch` makes.
  A job's failure (throw, timeout, memory, crash) is data; a chunk raises
  only when the pool itself is gone (then Dask runs it elsewhere). A chunk
  has a deadline: past it, its pool is replaced (killing what still runs)
  and the jobs without a record get status ``timeout`` with a
  ``ChunkTimeoutError``.
* Dask cannot stop a running task, so every timeout stays isolate's; Dask
  moves chunks and their records. When a Dask worker dies, Dask runs its
  chunks again elsewhere under the same key, and the client takes one
  result per key: a job may run twice, its record arrives once.

What stays local: contexts that live across calls (``create_context``,
``run_in_context``, handles). Every job here runs in a fresh context, and a
value that holds a live handle (a function, a promise) cannot leave its
worker: a record carries its JSON form (as ``isolate batch`` writes it),
``submit``/``map`` raise :class:`~isolate.errors.UnsupportedError`.

Importing this package needs the extra: ``pip install 'isolate-vm[dask]'``.
``client.py`` is the client side (DaskPool), ``worker.py`` what runs in the
Dask workers (the plugin, the chunk tasks); the client only refers to the
worker side's functions by name, and both import only isolate's public layers.
"""

from __future__ import annotations

try:
    import dask.base  # noqa: F401
    import distributed  # noqa: F401
except ModuleNotFoundError as _exc:  # only a missing package; a broken install raises as it is
    raise ImportError("isolate.dask needs Dask and distributed, which come with the extra: "
                      "pip install 'isolate-vm[dask]'", name=_exc.name) from _exc

from .client import DEFAULT_CHUNK_SIZE, DaskPool, open_for_cli
from .worker import ChunkTimeoutError, ClusterError, IsolatePoolPlugin

__all__ = ["DaskPool", "IsolatePoolPlugin", "ClusterError", "ChunkTimeoutError", "DEFAULT_CHUNK_SIZE",
           "open_for_cli"]
