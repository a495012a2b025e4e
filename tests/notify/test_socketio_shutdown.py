"""SIGTERM stops a real uvicorn process with real python-socketio clients connected, some of
them mid-poll, one hostile (an oversized POST and a session that never authenticates)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import socketio

from clicktrace.notify import TokenSigner
from clicktrace.testing import free_port

NODE = Path(__file__).with_name("socketio_node.py")
SECRET = "clicktrace-test-secret-0123456789"
GRACE = 2  # what the node gives uvicorn as timeout_graceful_shutdown
STOPPED_WITHIN = 60.0  # a hang detector, far above GRACE; never a timing assertion


async def wait_until_serving(url: str, proc: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient(timeout=1) as http:
        for _ in range(300):
            if proc.poll() is not None:
                raise RuntimeError("the node exited")
            try:
                await http.get(url + "/socket.io/?EIO=4&transport=polling")
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise RuntimeError("the node did not start")


async def test_sigterm_stops_the_server_with_clients_mid_poll() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, str(NODE), str(port), str(GRACE)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    clients: list[socketio.AsyncClient] = []
    try:
        await wait_until_serving(url, proc)
        signer = TokenSigner(SECRET)
        for transports in (["polling"], ["polling"], ["polling"], ["websocket"]):
            client = socketio.AsyncClient(reconnection=False)
            await client.connect(
                url, auth={"token": signer.issue().token}, transports=transports, wait_timeout=10
            )
            clients.append(client)
        async with httpx.AsyncClient(timeout=10) as http:
            base = url + "/socket.io/?EIO=4&transport=polling"
            opened = await http.get(base)
            sid = json.loads(opened.text[1:])["sid"]  # never authenticates
            hostile = await http.post(base + f"&sid={sid}", content=b"4" + b"x" * 20_000)
            assert hostile.status_code == 413
            idle = json.loads((await http.get(base)).text[1:])["sid"]
            poll = asyncio.ensure_future(http.get(base + f"&sid={idle}"))
            await asyncio.sleep(0.5)  # every polling client now has a poll in flight
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(proc.wait, STOPPED_WITHIN)
            poll.cancel()
        assert code in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has stopped
        _, stderr = proc.communicate()
        assert b"Traceback" not in stderr, stderr.decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for client in clients:
            await client.disconnect()
