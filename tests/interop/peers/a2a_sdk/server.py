"""An A2A 1.0 agent built on `a2a-sdk` 1.x, with a scripted behaviour (no model), for tests.

Run inside its own virtualenv (see requirements.txt):

    python server.py --port 8123 --record /tmp/requests.jsonl [--gate /tmp/gate]

What it does with the user's text (lower case):
- "restart ..."  streams a sentence, then pauses as `input-required` asking to approve the tool
                 call `restart_deployment` (with the hitl/v1 extension when the client activates
                 it, as plain text otherwise); "restart all" asks for two calls at once. The
                 answer completes the task saying what was decided; an approved call runs once.
- "ask ..."      pauses with questions (hitl/v1 `ask_user_request`, or plain text).
- "slow ..."     streams one chunk, waits until the file `<gate>/release` exists, then finishes.
- "fail ..." / "refuse ..." / "login ..."   end as failed / rejected / auth-required.
- anything else  streams a status message, a tool call with its result, and an answer in
                 artifact chunks, then completes.

Every JSON-RPC request is appended to the record file as one JSON line
(`{"path", "headers", "body"}`), and every tool run as `{"tool_run": name, "args": …}`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

import uvicorn
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentExtension,
    AgentInterface,
    AgentSkill,
    Message,
    Part,
    Task,
    TaskState,
    TaskStatus,
)
from google.protobuf.json_format import MessageToDict
from google.protobuf.struct_pb2 import Struct, Value
from starlette.applications import Starlette

HITL = "https://kagent.dev/extensions/hitl/v1"
RECORDED_HEADERS = ("a2a-version", "a2a-extensions", "authorization", "cf-access-client-id")
DEPLOYMENTS = {"api": "prod", "worker": "prod"}


class Recorder:
    """Appends what the peer saw to a JSON-lines file the tests read."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, entry: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")


class RecordRequests:
    """ASGI middleware: records every POST body with the headers tests care about."""

    def __init__(self, app: Any, recorder: Recorder) -> None:
        self.app = app
        self.recorder = recorder

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        try:
            parsed: Any = json.loads(body)
        except ValueError:
            parsed = body.decode(errors="replace")
        self.recorder.write(
            {
                "path": scope["path"],
                "headers": {k: headers[k] for k in RECORDED_HEADERS if k in headers},
                "body": parsed,
            }
        )
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def text_part(text: str) -> Part:
    return Part(text=text)


def data_part(data: dict[str, Any], metadata: dict[str, Any] | None = None) -> Part:
    part = Part(data=Value(struct_value=_struct(data)))
    if metadata:
        part.metadata.CopyFrom(_struct(metadata))
    return part


def _struct(data: dict[str, Any]) -> Struct:
    struct = Struct()
    struct.update(data)
    return struct


class ScriptedExecutor(AgentExecutor):
    def __init__(self, recorder: Recorder, gate: Path | None) -> None:
        self.recorder = recorder
        self.gate = gate

    async def execute(self, context: RequestContext, event_queue: Any) -> None:
        task = context.current_task
        updater = TaskUpdater(event_queue, context.task_id or "", context.context_id or "")
        if task is None:
            message = context.message or Message()
            await event_queue.enqueue_event(
                Task(
                    id=context.task_id,
                    context_id=context.context_id,
                    status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED),
                    history=[message],
                )
            )
        hitl = HITL in context.requested_extensions
        if task is not None and task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED:
            await self._answered(context, updater, task, hitl)
            return
        text = context.get_user_input().strip().lower()
        if text.startswith("restart"):
            await self._restart(updater, text, hitl)
        elif text.startswith("ask"):
            await self._ask(updater, hitl)
        elif text.startswith("slow"):
            await self._slow(updater)
        elif text.startswith("fail"):
            await updater.start_work()
            await updater.failed(self._say(updater, "The cluster API refused the request."))
        elif text.startswith("refuse"):
            await updater.reject(self._say(updater, "I do not run requests like this one."))
        elif text.startswith("login"):
            await updater.requires_auth(
                self._say(updater, "Sign in at https://login.example.test/a2a?state=abc first.")
            )
        else:
            await self._answer(updater, text)

    async def cancel(self, context: RequestContext, event_queue: Any) -> None:
        updater = TaskUpdater(event_queue, context.task_id or "", context.context_id or "")
        await updater.cancel()

    # --- scenarios ---------------------------------------------------------------------------

    async def _answer(self, updater: TaskUpdater, text: str) -> None:
        await updater.start_work(self._say(updater, "Checking the cluster."))
        call = {"id": "call-pods", "name": "get_pods", "args": {"namespace": "prod"}}
        await updater.update_status(
            TaskState.TASK_STATE_WORKING,
            updater.new_agent_message([data_part(call, {"adk_type": "function_call"})]),
        )
        result = {"id": "call-pods", "name": "get_pods", "response": {"ready": 3}}
        await updater.update_status(
            TaskState.TASK_STATE_WORKING,
            updater.new_agent_message([data_part(result, {"adk_type": "function_response"})]),
        )
        chunks = ["The cluster ", "is healthy: ", "3 pods ready."]
        for index, chunk in enumerate(chunks):
            await updater.add_artifact(
                [text_part(chunk)],
                artifact_id="answer",
                name="answer",
                append=index > 0,
                last_chunk=index == len(chunks) - 1,
            )
        await updater.complete()

    async def _restart(self, updater: TaskUpdater, text: str, hitl: bool) -> None:
        names = list(DEPLOYMENTS) if "all" in text.split() else ["api"]
        await updater.start_work()
        await updater.add_artifact(
            [text_part(f"I will restart {', '.join(names)} once you approve.")],
            artifact_id="plan",
            name="plan",
        )
        tools = [
            {
                "id": f"approval-{name}",
                "call_id": f"call-{name}",
                "name": "restart_deployment",
                "args": {"name": name, "namespace": DEPLOYMENTS[name]},
            }
            for name in names
        ]
        if hitl:
            request = {"type": "tool_approval_request", "hint": "Restarts need approval."}
            request["tools"] = tools
            message = updater.new_agent_message(
                [text_part("Approval required for restart_deployment")], metadata={HITL: request}
            )
            message.extensions.append(HITL)
        else:
            message = self._say(updater, f"May I restart {' and '.join(names)}? Answer yes or no.")
        await updater.requires_input(message)

    async def _ask(self, updater: TaskUpdater, hitl: bool) -> None:
        questions = [
            {"question": "Which environment?", "choices": ["dev", "prod"], "multiple": False},
            {"question": "Which checks?", "choices": ["pods", "nodes"], "multiple": True},
            {"question": "Anything else?", "choices": [], "multiple": False},
        ]
        if hitl:
            request = {"type": "ask_user_request", "id": "question-1", "questions": questions}
            message = updater.new_agent_message(
                [text_part("Which environment?")], metadata={HITL: request}
            )
            message.extensions.append(HITL)
        else:
            message = self._say(updater, "Which environment should I check?")
        await updater.requires_input(message)

    async def _slow(self, updater: TaskUpdater) -> None:
        await updater.start_work()
        await updater.add_artifact(
            [text_part("Counting the pods… ")], artifact_id="slow", name="answer"
        )
        while self.gate is not None and not (self.gate / "release").exists():
            await asyncio.sleep(0.05)
        await updater.add_artifact(
            [text_part("there are 42 pods.")],
            artifact_id="slow",
            append=True,
            last_chunk=True,
        )
        await updater.complete()

    async def _answered(
        self, context: RequestContext, updater: TaskUpdater, task: Task, hitl: bool
    ) -> None:
        asked = task.status.message
        request = MessageToDict(asked.metadata).get(HITL, {}) if asked.metadata else {}
        answer = context.message or Message()
        response = MessageToDict(answer.metadata).get(HITL, {}) if answer.metadata else {}
        await updater.start_work()
        if request.get("type") == "tool_approval_request" and hitl:
            lines = self._decide(request, response)
        elif request.get("type") == "ask_user_request" and hitl:
            lines = [f"Answers: {json.dumps(response.get('answers'))}."]
        else:
            reply = context.get_user_input().strip()
            lines = [f"You said: {reply}."]
            if "restart" in (asked.parts[0].text if asked.parts else "").lower():
                approved = reply.lower() in ("yes", "y", "approve", "approved")
                lines = [f"Decision: {'approved' if approved else 'rejected'} ({reply})."]
                if approved:
                    lines.append(self._run_tool("restart_deployment", {"name": "api"}))
        await updater.add_artifact([text_part(" ".join(lines))], name="result")
        await updater.complete()

    def _decide(self, request: dict[str, Any], response: dict[str, Any]) -> list[str]:
        if response.get("type") != "tool_approval_response":
            return ["No decision was given: nothing was restarted."]
        answers = {a.get("id"): a for a in response.get("approvals") or []}
        lines = []
        for tool in request.get("tools") or []:
            answer = answers.get(tool["id"], {})
            name = tool["args"]["name"]
            if answer.get("approved") is True:
                lines.append(f"Decision for {name}: approved.")
                lines.append(self._run_tool(tool["name"], tool["args"]))
            else:
                reason = answer.get("rejection_reason")
                said = f" ({reason})" if reason else ""
                lines.append(f"Decision for {name}: rejected{said}.")
        return lines

    def _run_tool(self, name: str, args: dict[str, Any]) -> str:
        self.recorder.write({"tool_run": name, "args": args})
        return f"Restarted deployment {args.get('name')}."

    @staticmethod
    def _say(updater: TaskUpdater, text: str) -> Message:
        return updater.new_agent_message([text_part(text)])


def build_app(port: int, recorder: Recorder, gate: Path | None) -> Any:
    url = f"http://127.0.0.1:{port}/"
    card = AgentCard(
        name="a2a-sdk-peer",
        description="Scripted A2A 1.0 agent for the orchestrator's tests.",
        version="1.3.0-test",
        supported_interfaces=[
            AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="1.0")
        ],
        capabilities=AgentCapabilities(
            streaming=True,
            extensions=[AgentExtension(uri=HITL, description="Tool approval and ask_user")],
        ),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[AgentSkill(id="ops", name="ops", description="Cluster chores", tags=["k8s"])],
    )
    handler = DefaultRequestHandler(
        agent_executor=ScriptedExecutor(recorder, gate),
        task_store=InMemoryTaskStore(),
        agent_card=card,
    )
    routes = [*create_agent_card_routes(card), *create_jsonrpc_routes(handler, rpc_url="/")]
    return RecordRequests(Starlette(routes=routes), recorder)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", type=Path, required=True)
    parser.add_argument("--gate", type=Path, default=None)
    args = parser.parse_args()
    app = build_app(args.port, Recorder(args.record), args.gate)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
