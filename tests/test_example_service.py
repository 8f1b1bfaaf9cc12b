"""examples/service/asyncio_service.py: the asyncio service example runs, and serves
clients while one client's script loops."""

import asyncio
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

import isolate

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "service" / "asyncio_service.py"

pytestmark = pytest.mark.timeout(120)

DEMO_OUTPUT = """\
200 {"value": 3}
200 {"value": {"total": [2, 4, 6]}}
422 {"error": {"message": "cannot read property 'x' of null", "name": "TypeError"}}
404 {"error": "no route /nowhere"}
408 {"error": "the script ran past 200 ms"}
200 {"value": 1}
200 {"value": 2}
200 {"value": 1}
200 {"sessions": 2, "workers": 2}
"""


def test_the_demo_prints_its_answers():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, str(EXAMPLE), "--demo"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=100)
    assert done.returncode == 0, done.stderr
    assert done.stdout == DEMO_OUTPUT


def _load_example():
    spec = importlib.util.spec_from_file_location("asyncio_service", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_service_answers_others_while_a_script_loops_and_a_hang_up_stops_it():
    service_module = _load_example()

    async def main():
        async with await asyncio.to_thread(isolate.Pool, size=2) as pool:
            # A long limit: the quick requests must all be answered before it could end the loop.
            service = service_module.Service(pool, timeout_ms=20_000)
            server = await asyncio.start_server(service.on_connection, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            request = service_module.request
            async with server:
                started = asyncio.Event()
                loop = asyncio.get_running_loop()
                session = await service.session("loop")
                session["started"] = lambda: loop.call_soon_threadsafe(started.set) and None
                loop_code = {"code": "started(); while (true) {}"}
                runaway = asyncio.create_task(request(port, "POST", "/sessions/loop", loop_code))
                await asyncio.wait_for(started.wait(), 20)
                answers = await asyncio.gather(*(
                    request(port, "POST", "/run", {"code": "input * 2", "input": i}) for i in range(20)))
                assert not runaway.done()
                assert answers == [(200, {"value": i * 2}) for i in range(20)]
                # The client hangs up: the server cancels its work, and so its script. The
                # session's context answers again only if its endless script was stopped.
                runaway.cancel()
                await asyncio.gather(runaway, return_exceptions=True)
                again = await asyncio.wait_for(request(port, "POST", "/sessions/loop", {"code": "'again'"}), 10)
                assert again == (200, {"value": "again"})
                return await request(port, "GET", "/health")

    assert asyncio.run(main()) == (200, {"workers": 2, "sessions": 1})
