"""Agent apps: each thread's agent session (`agents.sessions.setStatus`, the `session_status` of
`chat.stopStream`), Slack's Stop on a session (`agent_session_stopped`), and the Messages tab
(`app_home_opened`, `assistant.threads.setSuggestedPrompts`).

As Slack does: a session is created by its first status, and its title and initiator are taken
from that call only; Slack never changes a status by itself (not even on Stop); the Stop shows
only while a session is `processing`. A workspace where the app is not an agent
(`agent_sessions = False`) refuses both methods with `missing_scope` (`assistant:write` is the
scope declaring an agent adds). Suggested prompts sent with a `thread_ts` are dropped silently,
as Slack drops them for an app with the agent messaging experience.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from orchestrator.sandbox.slack_emulator.assistant import AssistantMethods
from orchestrator.sandbox.slack_emulator.records import SlackApiFailure
from orchestrator.sandbox.slack_emulator.stream_chunks import close_stream
from orchestrator.sandbox.slack_emulator.validation import missing_field

SESSION_STATUSES = frozenset({"processing", "suspended", "active", "closed"})
SESSION_TITLE_MAX = 200
PROMPTS_MAX = 4
AGENT_SCOPE = "assistant:write"
NOT_SUBSCRIBED = "missing_agent_session_stopped_event_subscription"


@dataclass
class AgentSession:
    """One thread's session as Slack keeps it; `statuses` lists every status it was given."""

    channel: str
    thread_ts: str
    title: str | None
    initiator: str | None
    statuses: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.statuses[-1]


class AgentSessionMethods(AssistantMethods):
    # -- inspection ----------------------------------------------------------------------------

    def session(self, channel: str, thread_ts: str) -> AgentSession | None:
        return self._sessions.get((channel, thread_ts))

    def session_statuses(self, channel: str, thread_ts: str) -> list[str]:
        """Every status the thread's session was given, in order ([] if it has none)."""
        found = self.session(channel, thread_ts)
        return list(found.statuses) if found else []

    def suggested_prompts(self, channel: str) -> dict[str, Any] | None:
        return self._prompts.get(channel)

    def dm_channel(self, user: str) -> str:
        """The app's direct-message channel with `user` (its Messages tab)."""
        channel = f"D{user.removeprefix('U')}"
        self._channels.add(channel)
        return channel

    # -- what people do ------------------------------------------------------------------------

    def stop_session_by_user(self, channel: str, thread_ts: str, user: str) -> dict[str, Any]:
        """Someone presses Slack's Stop on a thread's session: the app's streams in the thread
        stop (later stream calls get `stopped_by_user`); the session keeps its status. Returns
        the `agent_session_stopped` event to deliver."""
        found = self.session(channel, thread_ts)
        if found is None or found.status != "processing":
            raise ValueError("Slack shows Stop only while a session is processing")
        stopped = []
        for message in self.thread(channel, thread_ts):
            stream = self._live_stream(message)
            if stream is not None and message.user == self.bot_user_id:
                stream.stopped_by_user = True
                close_stream(message, stream)
                stopped.append(message.ts)
        return {
            "type": "agent_session_stopped",
            "channel": channel,
            "thread_ts": thread_ts,
            "user": user,
            "streaming_message_ts": stopped,
            "event_ts": f"{time.time():.6f}",
        }

    def open_messages_tab(self, user: str) -> dict[str, Any]:
        """Someone opens the app's Messages tab: the `app_home_opened` event to deliver."""
        return {
            "type": "app_home_opened",
            "user": user,
            "channel": self.dm_channel(user),
            "tab": "messages",
            "event_ts": f"{time.time():.6f}",
        }

    # -- the Web API ---------------------------------------------------------------------------

    def _session_set_status(self, params: dict[str, Any]) -> dict[str, Any]:
        self._agent_app()
        channel = self._channel(params, "channel_id")
        status = params.get("status")
        if status is None:
            raise missing_field("status")
        thread_ts = params.get("thread_ts")
        if not thread_ts:
            raise missing_field("thread_ts")
        if status not in SESSION_STATUSES:
            raise SlackApiFailure("invalid_arguments")
        title = params.get("title")
        if title is not None and not 0 < len(str(title)) <= SESSION_TITLE_MAX:
            raise SlackApiFailure("invalid_arguments")
        session = self._set_session(channel, str(thread_ts), str(status), title, params)
        body: dict[str, Any] = {"status": session.status, "title": session.title}
        if not self.session_stop_subscribed:
            body["warning"] = NOT_SUBSCRIBED
        return body

    def _set_session(
        self,
        channel: str,
        thread_ts: str,
        status: str,
        title: Any = None,
        params: dict[str, Any] | None = None,
    ) -> AgentSession:
        key = (channel, thread_ts)
        session = self._sessions.get(key)
        if session is None:  # the title and initiator count only when the session is created
            initiator = (params or {}).get("initiator_user_id")
            session = self._sessions[key] = AgentSession(channel, thread_ts, title, initiator)
        session.statuses.append(status)
        return session

    def _stop_stream(self, params: dict[str, Any]) -> dict[str, Any]:
        """`chat.stopStream`, whose `session_status` sets the thread's session where the app is
        an agent (elsewhere Slack ignores it)."""
        status = params.get("session_status")
        if status is not None and status not in SESSION_STATUSES:
            raise SlackApiFailure("invalid_arguments")
        result = super()._stop_stream(params)
        message = self._messages.get((result["channel"], result["ts"]))
        if status is not None and self.agent_sessions and message and message.thread_ts:
            self._set_session(message.channel, message.thread_ts, str(status))
        return result

    def _set_suggested_prompts(self, params: dict[str, Any]) -> dict[str, Any]:
        self._agent_app()
        channel = self._channel(params, "channel_id")
        prompts = params.get("prompts")
        if prompts is None:
            raise missing_field("prompts")
        if not isinstance(prompts, list) or not 0 < len(prompts) <= PROMPTS_MAX:
            raise SlackApiFailure("invalid_arguments")
        for prompt in prompts:
            if not (isinstance(prompt, dict) and prompt.get("title") and prompt.get("message")):
                raise SlackApiFailure("invalid_arguments")
        if params.get("thread_ts"):  # the legacy assistant form: dropped for an agent app
            return {}
        self._prompts[channel] = {"title": params.get("title"), "prompts": prompts}
        return {}

    def _agent_app(self) -> None:
        if not self.agent_sessions:
            raise SlackApiFailure("missing_scope", needed=AGENT_SCOPE, provided="chat:write")
