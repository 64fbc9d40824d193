"""pydantic-ai behind its AG-UI adapter (`AGUIAdapter`), with a scripted `FunctionModel`.

`restart_pod` is a tool with `requires_approval=True`: the run ends with an interrupt outcome
whose `responseSchema` is `{approved, editedArgs, reason}`, and a resume runs (or denies) it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from pydantic_ai import Agent, DeferredToolRequests
from pydantic_ai.messages import ModelMessage, ModelRequest, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, DeltaToolCalls, FunctionModel
from pydantic_ai.ui.ag_ui import AGUIAdapter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import peer_story as story


async def scripted(
    messages: list[ModelMessage], _info: AgentInfo
) -> AsyncIterator[str | DeltaToolCalls]:
    last = messages[-1]
    returns = [
        part
        for part in (last.parts if isinstance(last, ModelRequest) else [])
        if isinstance(part, ToolReturnPart) and part.tool_name == story.TOOL
    ]
    if returns:
        yield story.closing(str(returns[-1].content))
        return
    for word in story.INTRO.split(" "):
        if word:
            yield word + " "
    yield {0: DeltaToolCall(name=story.TOOL, json_args=json.dumps(story.ARGS))}


agent = Agent(
    FunctionModel(stream_function=scripted, model_name="scripted"),
    output_type=[str, DeferredToolRequests],
)


@agent.tool_plain(requires_approval=True, description=story.TOOL_DESCRIPTION)
def restart_pod(pod: str, namespace: str) -> str:
    return story.restart_pod(pod, namespace)


async def run(request: Request) -> Response:
    return await AGUIAdapter.dispatch_request(request, agent=agent)


app = Starlette(routes=[Route("/", run, methods=["POST"])])

if __name__ == "__main__":
    story.serve(app, story.options(__doc__ or "").port)
