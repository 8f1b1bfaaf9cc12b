"""isolate's worker process: hosts QuickJS contexts and serves the wire protocol.

The stack, bottom to top::

    bridge.js  (JS)      inside every context: value encoding, handle tables
    engine     (Python)  the only module that touches dukpy
    tagged               tagged JSON (bridge) <-> protocol value model
    worker               msgpack-RPC server: contexts, timeouts, nested calls

``python -m isolate.workers`` serves the protocol on stdin/stdout, for clients in
other languages (see protocol/SPEC.md).
"""

from .worker import MAX_NESTING, Worker, main

__all__ = ["Worker", "main", "MAX_NESTING"]
