"""Google ADK behind `ag-ui-adk`, with a scripted model (a `BaseLlm` that calls no service).

`restart_pod` is a `FunctionTool(require_confirmation=True)`: ADK pauses the run on its
long-running `adk_request_confirmation` tool call. `--mode default` leaves that call pending
with a plain RUN_FINISHED (answered by a tool message `{"confirmed": bool}`);
`--mode interrupt` (`emit_interrupt_outcome=True`) also reports it as an interrupt outcome,
resumed with `RunAgentInput.resume`.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from ag_ui_adk import ADKAgent, add_adk_fastapi_endpoint
from fastapi import FastAPI
from google.adk.agents import LlmAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.tools import FunctionTool
from google.genai import types

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import peer_story as story


def _tool_result(request: LlmRequest) -> str | None:
    """What the last turn says `restart_pod` came back with, if the last turn is its result."""
    last = request.contents[-1] if request.contents else None
    for part in (last.parts or []) if last is not None else []:
        response = part.function_response
        if response is not None and response.name == story.TOOL:
            body: dict[str, Any] = dict(response.response or {})
            return str(body.get("result") or body.get("error") or body)
    return None


class ScriptedLlm(BaseLlm):
    """Streams the story's sentence and the tool call, or the closing after the tool's result."""

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        result = _tool_result(llm_request)
        if result is not None:
            text = story.closing(result)
            yield LlmResponse(content=types.Content(role="model", parts=[types.Part(text=text)]))
            return
        words = [word + " " for word in story.INTRO.split(" ") if word]
        if stream:
            for word in words:
                yield LlmResponse(
                    content=types.Content(role="model", parts=[types.Part(text=word)]),
                    partial=True,
                )
        call = types.FunctionCall(
            id=f"call_{uuid.uuid4().hex[:12]}", name=story.TOOL, args=dict(story.ARGS)
        )
        yield LlmResponse(
            content=types.Content(
                role="model",
                parts=[types.Part(text="".join(words)), types.Part(function_call=call)],
            )
        )


def restart_pod(pod: str, namespace: str) -> str:
    """Restart a Kubernetes pod."""
    return story.restart_pod(pod, namespace)


if __name__ == "__main__":
    options = story.options(__doc__ or "", "default", "interrupt")
    os.environ.setdefault("GOOGLE_GENAI_USE_VERTEXAI", "false")
    llm_agent = LlmAgent(
        name="ops",
        model=ScriptedLlm(model="scripted"),
        instruction="Restart pods when asked.",
        tools=[FunctionTool(restart_pod, require_confirmation=True)],
    )
    agent = ADKAgent(
        adk_agent=llm_agent,
        app_name="ops",
        user_id="slack",
        emit_interrupt_outcome=options.mode == "interrupt",
    )
    app = FastAPI()
    add_adk_fastapi_endpoint(app, agent, "/")
    story.serve(app, options.port)
