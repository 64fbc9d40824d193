"""`orchestrator sandbox` as a process: it starts the service and the page, answers through the
real service, refuses a taken port, and Ctrl-C stops everything it started."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import httpx

from tests.sandbox_process import sandbox_running


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def _until_answered(client: httpx.AsyncClient, url: str) -> list[dict]:
    """The thread once the agent's answer is in it (the page shows the same snapshot)."""
    thread: list[dict] = []
    try:
        async with asyncio.timeout(60):
            while not any("Nothing here calls a real model" in m["text"] for m in thread[1:]):
                await asyncio.sleep(0.1)
                thread = (await client.get(url)).json()["thread"]
    except TimeoutError:
        raise AssertionError(f"no answer; the thread reads {[m['text'] for m in thread]}") from None
    return thread


async def test_a_message_written_in_the_page_is_answered_by_the_service(tmp_path: Path) -> None:
    async with sandbox_running(tmp_path) as sandbox, httpx.AsyncClient(timeout=30) as client:
        setup = (await client.get(f"{sandbox.url}sandbox/setup")).json()
        assert [c["name"] for c in setup["channels"]] == ["general", "approvals", "alerts"]
        assert "<title>Slack thread orchestrator" in (await client.get(sandbox.url)).text
        written = await client.post(
            f"{sandbox.url}sandbox/messages",
            json={"channel": "C0GENERAL", "user": "U0ALICE", "text": "@Orchestrator hello"},
        )
        ts = written.json()["ts"]
        query = f"channel=C0GENERAL&user=U0ALICE&thread={ts}"
        thread = await _until_answered(client, f"{sandbox.url}sandbox/snapshot?{query}")
        assert thread[0]["text"] == "<@UBOT> hello"
        assert thread[1]["sender"]["name"] == "Orchestrator"
        inspected = (await client.get(f"{sandbox.url}sandbox/inspect?{query}")).json()
        while inspected["thread"]["state"] != "done":  # the answer shows before the last write
            await asyncio.sleep(0.1)
            inspected = (await client.get(f"{sandbox.url}sandbox/inspect?{query}")).json()
        triggers = [t["trigger"] for t in inspected["thread"]["transitions"]]
        assert triggers == ["user_message", "run_started", "run_finished"]
        assert "chat.startStream" in [call["method"] for call in inspected["slack_calls"]]
        assert inspected["agent"][0]["kind"] == "request"
        assert inspected["agent"][-1]["data"]["type"] == "RUN_FINISHED"


async def test_ctrl_c_stops_the_service_and_the_page(tmp_path: Path) -> None:
    async with sandbox_running(tmp_path) as sandbox:
        service = sandbox.service_pid
        assert _alive(service)
        code = await sandbox.interrupt()
    assert code == 0
    assert not _alive(service)
    async with httpx.AsyncClient() as client:
        try:
            await client.get(sandbox.url)
        except httpx.ConnectError:
            pass
        else:
            raise AssertionError("the page still answers after Ctrl-C")
    assert (tmp_path / "sandbox.db").exists()  # --db keeps the database


async def test_a_taken_port_is_refused_with_what_to_do(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "orchestrator",
            "sandbox",
            "--port",
            str(port),
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _out, err = await proc.communicate()
    assert proc.returncode == 1
    assert f"port {port} on 127.0.0.1 is taken" in err.decode()
    assert "--port" in err.decode()
