"""A local stand-in for the Slack Web API, served over real HTTP on 127.0.0.1.

`slack_sdk`'s `AsyncWebClient(token=..., base_url=emulator.api_url)` works against it unchanged.
It keeps a small workspace in memory (channels, threads, ephemerals, modals, native streams),
rejects what Slack rejects (Block Kit limits, stream state, auth), records every call, injects
failures on request, and delivers signed events and interactivity payloads to an app under test,
over HTTP or, to an app in Socket Mode (`apps.connections.open`), over its WebSocket.

One module per Web API family (chat, conversations, views, assistant, agent sessions and the
Messages tab, usergroups, auth), the deliveries to the app, the workspace state they share, and
`emulator` putting them together.
"""

from orchestrator.sandbox.slack_emulator.agent_sessions import AgentSession
from orchestrator.sandbox.slack_emulator.emulator import SlackEmulator
from orchestrator.sandbox.slack_emulator.records import (
    API_APP_ID,
    VERIFICATION_TOKEN,
    RecordedCall,
    SlackApiFailure,
    StoredMessage,
)
from orchestrator.sandbox.slack_emulator.rendering import render_text

__all__ = [
    "API_APP_ID",
    "VERIFICATION_TOKEN",
    "AgentSession",
    "RecordedCall",
    "SlackApiFailure",
    "SlackEmulator",
    "StoredMessage",
    "render_text",
]
