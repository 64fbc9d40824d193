"""What the side panel shows beside a thread: the Slack calls that touched it (as the emulator
recorded them), what went to and came from the agent, and the service's log lines about it."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from orchestrator.sandbox.agent_server import AgentExchange
from orchestrator.sandbox.slack_emulator import RecordedCall, SlackEmulator

CALLS_SHOWN = 400
EXCHANGES_SHOWN = 1500


@dataclass(slots=True)
class SlackCall:
    seq: int
    at: float
    method: str
    status: int
    ok: bool
    error: str
    channel: str
    thread_ts: str
    params: dict[str, Any]
    response: dict[str, Any]

    def json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "method": self.method,
            "status": self.status,
            "ok": self.ok,
            "error": self.error,
            "params": self.params,
            "response": self.response,
        }


class SlackCallLog:
    """Every Web API call the service made, each filed under the thread it touched, worked out
    when it was answered (a message deleted later is still found)."""

    def __init__(self, slack: SlackEmulator) -> None:
        self.slack = slack
        self.calls: list[SlackCall] = []
        self.modal_owners: dict[str, str] = {}  # view id -> the user it was opened for
        self.trigger_users: dict[str, str] = {}  # trigger id -> the user whose click issued it

    def record(self, call: RecordedCall) -> None:
        params, response = call.params, call.response
        channel = str(params.get("channel") or params.get("channel_id") or "")
        thread_ts = self._thread_of(channel, params, response)
        if call.method in ("views.open", "views.push") and response.get("ok"):
            view_id = str((response.get("view") or {}).get("id", ""))
            user = self.trigger_users.get(str(params.get("trigger_id", "")))
            if view_id and user:
                self.modal_owners[view_id] = user
        self.calls.append(
            SlackCall(
                seq=len(self.calls),
                at=time.time(),
                method=call.method,
                status=call.status,
                ok=bool(response.get("ok")),
                error=str(response.get("error") or ""),
                channel=channel,
                thread_ts=thread_ts,
                params=params,
                response=response,
            )
        )

    def _thread_of(self, channel: str, params: dict[str, Any], response: dict[str, Any]) -> str:
        if params.get("thread_ts"):
            return self._root(channel, str(params["thread_ts"]))
        for key in ("ts", "timestamp", "message_ts"):
            if params.get(key):
                return self._root(channel, str(params[key]))
        if response.get("ts"):
            return self._root(channel, str(response["ts"]))
        return ""

    def _root(self, channel: str, ts: str) -> str:
        message = self.slack.message(channel, ts)
        if message is not None and message.thread_ts:
            return message.thread_ts
        return ts

    def of_thread(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        found = [c for c in self.calls if c.channel == channel and c.thread_ts == thread_ts]
        return [call.json() for call in found[-CALLS_SHOWN:]]

    def latest(self) -> list[dict[str, Any]]:
        return [call.json() for call in self.calls[-CALLS_SHOWN:]]


def exchanges_of(exchanges: Iterable[AgentExchange], conversation: str) -> list[dict[str, Any]]:
    """The runs of one conversation (its AG-UI `threadId`): requests and the events sent back."""
    found = [e for e in exchanges if e.thread_id == conversation]
    return [
        {"at": e.at, "run": e.run_id, "kind": e.kind, "data": e.data}
        for e in found[-EXCHANGES_SHOWN:]
    ]


def log_lines_of(lines: Iterable[dict[str, Any]], conversation: str | None) -> list[dict[str, Any]]:
    """The service's log lines; with a conversation, those that name it."""
    if conversation is None:
        return list(lines)[-EXCHANGES_SHOWN:]
    found = [
        line
        for line in lines
        if conversation in (line.get("conversation"), line.get("thread"), line.get("thread_id"))
    ]
    return found[-EXCHANGES_SHOWN:]
