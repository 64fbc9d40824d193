"""Kagent's released Python agent runtime (`kagent-adk` 0.10, A2A 0.3) with a scripted model.

Run inside its own virtualenv (see requirements.txt):

    python server.py --port 8124 --record /tmp/requests.jsonl [--gate /tmp/gate]

The app is Kagent's own `KAgentApp` (local mode: in-memory sessions and tasks), streaming, with a
Google ADK agent whose model is scripted here (no LLM) and whose tool `restart_deployment` needs
approval through Kagent's approval callback, so it pauses with the `adk_request_confirmation`
DataPart. What the model does with the user's text (lower case):
- "restart ..."  calls `restart_deployment` ("restart all": two calls at once), then reports
                 what happened (the tool's result, or Kagent's rejection message).
- "check ..."    calls `get_pods` (no approval), then answers with its result.
- "ask ..."      calls Kagent's built-in `ask_user` tool, then repeats the answers.
- "slow ..."     streams one chunk, waits until `<gate>/release` exists, then finishes.
- anything else  streams a short answer that names the text.

Every POST is recorded as a JSON line (`{"path", "headers", "body"}`), every tool run as
`{"tool_run": name, "args": …}`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import uvicorn
from a2a.types import AgentCapabilities, AgentCard, AgentSkill
from google.adk.agents import LlmAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.tools import FunctionTool
from google.genai import types
from kagent.adk import KAgentApp
from kagent.adk._approval import make_approval_callback, strip_confirmation_parts_callback
from kagent.adk.tools.ask_user_tool import AskUserTool

RECORDED_HEADERS = ("a2a-version", "x-a2a-extensions", "authorization", "cf-access-client-id")
DEPLOYMENTS = {"api": "prod", "worker": "prod"}
RECORD: Path | None = None
GATE: Path | None = None


def record(entry: dict[str, Any]) -> None:
    if RECORD is not None:
        with RECORD.open("a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")


class RecordRequests:
    """ASGI middleware: records every POST body with the headers tests care about."""

    def __init__(self, app: Any) -> None:
        self.app = app

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
        record(
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


def restart_deployment(name: str, namespace: str) -> dict[str, Any]:
    """Restarts a deployment (rolling restart)."""
    record({"tool_run": "restart_deployment", "args": {"name": name, "namespace": namespace}})
    return {"restarted": name, "namespace": namespace}


def get_pods(namespace: str) -> dict[str, Any]:
    """Lists the pods of a namespace."""
    record({"tool_run": "get_pods", "args": {"namespace": namespace}})
    return {"namespace": namespace, "ready": 3}


class ScriptedModel(BaseLlm):
    """Decides from the conversation so far, as a model would, without any model."""

    model: str = "scripted"

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        contents = llm_request.contents or []
        last = contents[-1] if contents else None
        responses = [p.function_response for p in (last.parts or []) if p.function_response]
        if last is not None and responses:
            said = " ".join(_describe(r.name or "", r.response or {}) for r in responses)
            async for response in _say(said, stream):
                yield response
            return
        text = _last_user_text(contents).strip().lower()
        if text.startswith("restart"):
            names = list(DEPLOYMENTS) if "all" in text.split() else ["api"]
            yield _calls(
                [("restart_deployment", {"name": n, "namespace": DEPLOYMENTS[n]}) for n in names]
            )
        elif text.startswith("check"):
            namespace = "dev" if "dev" in text.split() else "prod"
            yield _calls([("get_pods", {"namespace": namespace})])
        elif text.startswith("ask"):
            questions = [
                {"question": "Which environment?", "choices": ["dev", "prod"], "multiple": False},
                {"question": "Anything else?", "choices": [], "multiple": False},
            ]
            yield _calls([("ask_user", {"questions": questions})])
        elif text.startswith("slow"):
            yield _text("Counting the pods… ", partial=True)
            while GATE is not None and not (GATE / "release").exists():
                await asyncio.sleep(0.05)
            yield _text("there are 42 pods.", partial=True)
            yield _text("Counting the pods… there are 42 pods.", partial=False)
        else:
            async for response in _say(f"Kagent heard: {text}.", stream):
                yield response


def _describe(name: str, response: dict[str, Any]) -> str:
    if name == "restart_deployment":
        if "restarted" in response:
            return f"Restarted deployment {response['restarted']}."
        return f"Nothing restarted: {response.get('result', response)}"
    if name == "get_pods":
        return f"{response.get('namespace')} has {response.get('ready')} pods ready."
    return f"{name} returned {json.dumps(response)}."


def _last_user_text(contents: list[types.Content]) -> str:
    for content in reversed(contents):
        if content.role == "user":
            texts = [p.text for p in content.parts or [] if p.text]
            if texts:
                return " ".join(texts)
    return ""


def _calls(calls: list[tuple[str, dict[str, Any]]]) -> LlmResponse:
    parts = [types.Part(function_call=types.FunctionCall(name=n, args=a)) for n, a in calls]
    return LlmResponse(content=types.Content(role="model", parts=parts), turn_complete=True)


def _text(text: str, *, partial: bool) -> LlmResponse:
    content = types.Content(role="model", parts=[types.Part(text=text)])
    return LlmResponse(content=content, partial=partial, turn_complete=not partial)


async def _say(text: str, stream: bool) -> AsyncGenerator[LlmResponse, None]:
    if stream:
        words = text.split(" ")
        for index, word in enumerate(words):
            yield _text(word + (" " if index < len(words) - 1 else ""), partial=True)
    yield _text(text, partial=False)


def build_agent() -> LlmAgent:
    return LlmAgent(
        name="k8s_agent",
        model=ScriptedModel(),
        instruction="Scripted.",
        tools=[FunctionTool(restart_deployment), FunctionTool(get_pods), AskUserTool()],
        before_tool_callback=make_approval_callback({"restart_deployment"}),
        before_model_callback=strip_confirmation_parts_callback,
    )


def build_app(port: int) -> Any:
    card = AgentCard(
        name="k8s-agent",
        description="Kagent agent with a scripted model, for the orchestrator's tests.",
        url=f"http://127.0.0.1:{port}/",
        version="0.10.4-test",
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=["text"],
        default_output_modes=["text"],
        skills=[AgentSkill(id="k8s", name="k8s", description="Cluster chores", tags=["k8s"])],
    )
    app = KAgentApp(
        root_agent_factory=build_agent,
        agent_card=card,
        kagent_url="http://127.0.0.1:9",
        app_name="k8s_agent",
        stream=True,
    )
    return RecordRequests(app.build(local=True))


def main() -> None:
    global RECORD, GATE
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", type=Path, required=True)
    parser.add_argument("--gate", type=Path, default=None)
    args = parser.parse_args()
    RECORD, GATE = args.record, args.gate
    uvicorn.run(build_app(args.port), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
