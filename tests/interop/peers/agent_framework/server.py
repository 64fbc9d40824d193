"""Microsoft Agent Framework behind `agent-framework-ag-ui`, with a scripted chat client.

`restart_pod` is a tool with `approval_mode="always_require"`: the run ends with an interrupt
outcome whose `responseSchema` offers `approved`/`accepted`, each argument, and `editedArgs`
(a full replacement of the arguments); a resume runs the tool or tells the model it was rejected.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from agent_framework import (
    Agent,
    BaseChatClient,
    ChatResponse,
    ChatResponseUpdate,
    Content,
    FunctionInvocationLayer,
    Message,
    ResponseStream,
    tool,
)
from agent_framework_ag_ui import add_agent_framework_fastapi_endpoint
from fastapi import FastAPI

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import peer_story as story


def _script(messages: Sequence[Message]) -> list[ChatResponseUpdate]:
    results = [
        content
        for content in (messages[-1].contents if messages else [])
        if content.type == "function_result"
    ]
    if results:
        text = story.closing(str(results[-1].result))
        return [ChatResponseUpdate(role="assistant", contents=[Content.from_text(text=text)])]
    updates = [
        ChatResponseUpdate(role="assistant", contents=[Content.from_text(text=word + " ")])
        for word in story.INTRO.split(" ")
        if word
    ]
    call = Content.from_function_call(
        call_id=f"call_{uuid.uuid4().hex[:12]}", name=story.TOOL, arguments=dict(story.ARGS)
    )
    updates.append(ChatResponseUpdate(role="assistant", contents=[call]))
    return updates


class ScriptedChatClient(FunctionInvocationLayer[Any], BaseChatClient[Any]):
    """Streams the story's sentence and tool call, or the closing after a tool result."""

    def _inner_get_response(
        self,
        *,
        messages: Sequence[Message],
        stream: bool,
        options: Mapping[str, Any],
        **kwargs: Any,
    ) -> Any:
        updates = _script(messages)
        if stream:

            async def produce() -> AsyncIterator[ChatResponseUpdate]:
                for update in updates:
                    yield update

            return ResponseStream(produce(), finalizer=ChatResponse.from_updates)

        async def whole() -> ChatResponse:
            return ChatResponse.from_updates(updates)

        return whole()


@tool(name=story.TOOL, description=story.TOOL_DESCRIPTION, approval_mode="always_require")
def restart_pod(pod: str, namespace: str) -> str:
    return story.restart_pod(pod, namespace)


agent = Agent(client=ScriptedChatClient(), name="ops", tools=[restart_pod])
app = FastAPI()
add_agent_framework_fastapi_endpoint(app, agent, "/", single_user=True)

if __name__ == "__main__":
    story.serve(app, story.options(__doc__ or "").port)
