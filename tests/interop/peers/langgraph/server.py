"""A LangGraph graph behind `ag-ui-langgraph`, with a scripted chat model.

The `approve` node calls `interrupt()` with a message, the tool call id and a `responseSchema`
(`{approved, editedArgs, reason}`). `--mode outcome` reports it as the AG-UI 1.0
`RUN_FINISHED.outcome` (resumed with `RunAgentInput.resume`); `--mode legacy` as the
`on_interrupt` CUSTOM event and a plain RUN_FINISHED (resumed with
`forwardedProps.command.resume`).
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ag_ui_langgraph import LangGraphAgent, add_langgraph_fastapi_endpoint
from fastapi import FastAPI
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import interrupt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import peer_story as story

RESPONSE_SCHEMA = {
    "type": "object",
    "properties": {
        "approved": {"type": "boolean", "description": "Run the tool?"},
        "editedArgs": {"type": "object", "description": "Arguments to run the tool with instead"},
        "reason": {"type": "string", "description": "Why"},
    },
    "required": ["approved"],
}


class ScriptedChatModel(BaseChatModel):
    """Streams the story's sentence and the tool call, or the closing after a tool result."""

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        last = messages[-1]
        if isinstance(last, ToolMessage):
            chunks = [AIMessageChunk(content=story.closing(str(last.content)))]
        else:
            chunks = [AIMessageChunk(content=w + " ") for w in story.INTRO.split(" ") if w]
            chunks.append(
                AIMessageChunk(
                    content="",
                    tool_call_chunks=[
                        {
                            "name": story.TOOL,
                            "args": json.dumps(story.ARGS),
                            "id": f"call_{uuid.uuid4().hex[:12]}",
                            "index": 0,
                        }
                    ],
                )
            )
        for chunk in chunks:
            generation = ChatGenerationChunk(message=chunk)
            if run_manager is not None:
                run_manager.on_llm_new_token(str(chunk.content), chunk=generation)
            yield generation

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        merged: AIMessageChunk | None = None
        for generation in self._stream(messages, stop, run_manager, **kwargs):
            chunk = generation.message
            assert isinstance(chunk, AIMessageChunk)
            merged = chunk if merged is None else merged + chunk
        assert merged is not None
        message = AIMessage(content=merged.content, tool_calls=merged.tool_calls)
        return ChatResult(generations=[ChatGeneration(message=message)])


model = ScriptedChatModel()


def talk(state: MessagesState) -> dict[str, Any]:
    return {"messages": [model.invoke(state["messages"])]}


def approve(state: MessagesState) -> dict[str, Any]:
    call = state["messages"][-1].tool_calls[0]  # type: ignore[attr-defined]
    decision = interrupt(
        {"message": story.HINT, "toolCallId": call["id"], "responseSchema": RESPONSE_SCHEMA}
    )
    if isinstance(decision, dict) and decision.get("approved") is True:
        args = decision.get("editedArgs") or call["args"]
        content = story.restart_pod(**args)
    else:
        reason = decision.get("reason") if isinstance(decision, dict) else None
        content = f"rejected: {reason}" if reason else "rejected"
    return {"messages": [ToolMessage(content=content, tool_call_id=call["id"])]}


def after_talk(state: MessagesState) -> str:
    last = state["messages"][-1]
    return "approve" if getattr(last, "tool_calls", None) else END


builder = StateGraph(MessagesState)
builder.add_node("talk", talk)
builder.add_node("approve", approve)
builder.add_edge(START, "talk")
builder.add_conditional_edges("talk", after_talk, ["approve", END])
builder.add_edge("approve", "talk")
graph = builder.compile(checkpointer=InMemorySaver())

if __name__ == "__main__":
    options = story.options(__doc__ or "", "outcome", "legacy")
    legacy = options.mode == "legacy"
    agent = LangGraphAgent(
        name="ops",
        graph=graph,
        enable_legacy_on_interrupt_event=legacy,
        emit_interrupt_outcome=not legacy,
    )
    app = FastAPI()
    add_langgraph_fastapi_endpoint(app, agent, "/")
    story.serve(app, options.port)
