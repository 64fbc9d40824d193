"""auth.test and apps.connections.open (an app-level token opens a Socket Mode URL), and the
bot token's scopes: sent in `x-oauth-scopes` as Slack does, and required per method."""

from __future__ import annotations

from typing import Any

from orchestrator.sandbox.slack_emulator.workspace import Workspace

APP_TOKEN_METHODS = frozenset({"apps.connections.open"})  # the only ones an xapp- token may call

# The scope each Web API method needs (Slack's method reference); conversations.replies needs
# the history scope of the conversation's kind.
METHOD_SCOPES: dict[str, str] = {
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.delete": "chat:write",
    "chat.postEphemeral": "chat:write",
    "chat.startStream": "chat:write",
    "chat.appendStream": "chat:write",
    "chat.stopStream": "chat:write",
    "assistant.threads.setStatus": "chat:write",
    "reactions.add": "reactions:write",
    "reactions.remove": "reactions:write",
    "usergroups.users.list": "usergroups:read",
}
HISTORY_SCOPES = {"C": "channels:history", "G": "groups:history", "D": "im:history"}


class AuthMethods(Workspace):
    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://sandbox.slack.com/",
            "team": "Sandbox",
            "user": "sandbox-bot",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _connections_open(self, _params: dict[str, Any]) -> dict[str, Any]:
        return {"url": self.socket_mode.url}

    def _missing_scope(self, method: str, params: dict[str, Any]) -> dict[str, Any] | None:
        """Slack's answer to a bot token without the scope `method` needs, else None."""
        needed = METHOD_SCOPES.get(method)
        if method == "conversations.replies":
            needed = HISTORY_SCOPES.get(str(params.get("channel", ""))[:1])
        if needed is None or needed in self.scopes:
            return None
        return {
            "ok": False,
            "error": "missing_scope",
            "needed": needed,
            "provided": ",".join(self.scopes),
        }
