"""An asyncio service that runs scripts its clients send: asyncio.start_server, no framework.

A tiny HTTP/1.1 server (one request per connection) in front of an isolate.Pool:

    POST /run              {"code": "...", "input": {...}}   a fresh context per request
    POST /sessions/<name>  {"code": "..."}                   a context kept per session name
    GET  /health                                             the pool's workers

Every script runs in a worker process with a time limit, and the event loop never waits
for one: a client whose script loops forever gets a 408 after TIMEOUT_MS while the
others are answered meanwhile. A client that hangs up stops its script (its task is
cancelled, which cancels the call).

Run it:          python examples/service/asyncio_service.py --port 8080
                 curl -s localhost:8080/run -d '{"code": "input.a + input.b", "input": {"a": 1, "b": 2}}'
See it work:     python examples/service/asyncio_service.py --demo
"""

from __future__ import annotations

import argparse
import asyncio
import json

import isolate
from isolate.batch import jsonable

TIMEOUT_MS = 200            # each script's time limit
MAX_BODY = 64 * 1024        # bytes of request body accepted


class Service:
    def __init__(self, pool: isolate.Pool, timeout_ms: int = TIMEOUT_MS):
        self.pool = pool
        self.timeout_ms = timeout_ms
        self.sessions: dict[str, isolate.Context] = {}

    async def handle(self, method: str, path: str, body: bytes) -> tuple[int, dict]:
        if method == "GET" and path == "/health":
            return 200, {"workers": len(self.pool.worker_pids()), "sessions": len(self.sessions)}
        if method != "POST":
            return 405, {"error": "use POST"}
        try:
            request = json.loads(body or b"{}")
            code = request["code"]
        except (ValueError, KeyError, TypeError):
            return 400, {"error": 'the body must be JSON with a "code" string'}
        if not isinstance(code, str):
            return 400, {"error": '"code" must be a string'}
        try:
            if path == "/run":
                value = await self.pool.arun_in_new_context(code, {"input": request.get("input")},
                                                            timeout=self.timeout_ms, filename="request.js")
            elif path.startswith("/sessions/") and len(path) > len("/sessions/"):
                context = await self.session(path[len("/sessions/"):])
                value = await self.pool.arun_in_context(code, context, timeout=self.timeout_ms, filename="session.js")
            else:
                return 404, {"error": f"no route {path}"}
        except isolate.ScriptTimeoutError:
            return 408, {"error": f"the script ran past {self.timeout_ms} ms"}
        except isolate.JSError as exc:
            return 422, {"error": {"name": exc.name, "message": exc.message}}
        except isolate.IsolateError as exc:
            return 400, {"error": {"code": exc.code, "message": str(exc)}}
        return 200, {"value": jsonable(value)}

    async def session(self, name: str) -> isolate.Context:
        context = self.sessions.get(name)
        if context is None:
            # Creating a context is a round trip to a worker: off the event loop too.
            context = await asyncio.to_thread(self.pool.create_context, {}, name=f"session {name}")
            context = self.sessions.setdefault(name, context)
        return context

    async def on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, payload = await self.read_and_answer(reader)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            status, payload = 400, {"error": "malformed request"}
        body = json.dumps(payload).encode()
        try:
            writer.write(f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def read_and_answer(self, reader: asyncio.StreamReader) -> tuple[int, dict]:
        method, path, _ = (await reader.readline()).decode("latin-1").split(" ", 2)
        length = 0
        while (line := (await reader.readline()).decode("latin-1").strip()):
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if length > MAX_BODY:
            return 413, {"error": f"the body is over {MAX_BODY} bytes"}
        body = await reader.readexactly(length) if length else b""
        # The client sends nothing more; if it hangs up before the answer, cancelling the
        # work cancels the call, which stops the script in its worker.
        work = asyncio.ensure_future(self.handle(method, path, body))
        hang_up = asyncio.ensure_future(reader.read(1))
        await asyncio.wait({work, hang_up}, return_when=asyncio.FIRST_COMPLETED)
        if work.done():
            hang_up.cancel()
            return work.result()
        work.cancel()
        raise ConnectionResetError("the client hung up")


REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
           413: "Payload Too Large", 422: "Unprocessable Entity"}


async def request(port: int, method: str, path: str, payload: dict | None = None) -> tuple[int, dict]:
    """A minimal HTTP client for the demo (and the tests)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = json.dumps(payload).encode() if payload is not None else b""
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    try:
        await writer.drain()
        response = await reader.read()
    finally:
        writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


async def demo() -> None:
    # Starting a pool takes a few hundred ms: on a thread, so the loop stays free.
    async with await asyncio.to_thread(isolate.Pool, size=2) as pool:
        service = Service(pool)
        server = await asyncio.start_server(service.on_connection, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            # A script that never ends, and meanwhile others, all at once.
            runaway = asyncio.create_task(request(port, "POST", "/run", {"code": "while (true) {}"}))
            answers = await asyncio.gather(
                request(port, "POST", "/run", {"code": "input.a + input.b", "input": {"a": 1, "b": 2}}),
                request(port, "POST", "/run", {"code": "({ total: input.map(x => x * 2) })", "input": [1, 2, 3]}),
                request(port, "POST", "/run", {"code": "null.x"}),
                request(port, "POST", "/nowhere", {"code": "1"}),
            )
            answers.append(await runaway)
            # Sessions keep their state from one request to the next.
            for name in ("alice", "alice", "bob"):
                answers.append(await request(port, "POST", f"/sessions/{name}",
                                             {"code": "globalThis.n = (globalThis.n || 0) + 1"}))
            answers.append(await request(port, "GET", "/health"))
            for status, payload in answers:
                print(status, json.dumps(payload, sort_keys=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--demo", action="store_true", help="start, send a few requests, print the answers, stop")
    args = parser.parse_args()
    if args.demo:
        asyncio.run(demo())
        return

    async def serve() -> None:
        async with await asyncio.to_thread(isolate.Pool) as pool:
            server = await asyncio.start_server(Service(pool).on_connection, "127.0.0.1", args.port)
            print(f"listening on http://127.0.0.1:{args.port}")
            async with server:
                await server.serve_forever()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
