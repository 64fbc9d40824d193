"""What a run asks and of whom: the agent a thread's run goes to, and its run input (the
conversation, the Slack place, the answers of a resume)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ag_ui.core import RunAgentInput

from orchestrator.agent.targets import AgentResolver, AgentTarget
from orchestrator.config.channels import ChannelPolicy
from orchestrator.core import approvals
from persistence.models import Thread
from persistence.store import Store


class RunRequests:
    def __init__(
        self, store: Store, agents: AgentResolver, policy: Callable[[str], ChannelPolicy]
    ) -> None:
        self.store = store
        self.agents = agents
        self.policy = policy

    async def target(self, thread: Thread) -> AgentTarget:
        """The agent that answered the thread first, else the one the channel's routes pick for
        the latest message, else the channel's agent."""
        policy = self.policy(thread.channel_id)
        default = self.agents(thread.channel_id)
        kept = await self.store.agent_task(thread.id)
        if kept is not None and kept.agent:
            return policy.agent_for("", kept.agent, default)
        text = last_user_text(await self.store.messages(thread.id)) if policy.routes else ""
        return policy.agent_for(text, None, default)

    async def run_input(
        self,
        thread: Thread,
        target: AgentTarget,
        run_id: str,
        resume: approvals.Resume | None,
    ) -> RunAgentInput:
        if target.history == "server":
            messages = await self.store.unsent_messages(thread.id)
        else:
            messages = await self.store.messages(thread.id)
        forwarded: dict[str, Any] = {
            "source": "slack",
            "slack": {"channel": thread.channel_id, "threadTs": thread.thread_ts},
        }
        payload: dict[str, Any] = {
            "threadId": thread.id,
            "runId": run_id,
            "messages": messages,
            "tools": [],
            "context": [],
            "state": None,
            "forwardedProps": forwarded,
        }
        if resume is not None:
            resume.apply(payload)
        return RunAgentInput.model_validate(payload)


def last_user_text(messages: list[dict[str, Any]]) -> str:
    """The text of the conversation's latest user message (what routing rules read)."""
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return " ".join(str(p.get("text") or "") for p in content if isinstance(p, dict))
    return ""
