"""auth.test and apps.connections.open (an app-level token opens a Socket Mode URL)."""

from __future__ import annotations

from typing import Any

from orchestrator.sandbox.slack_emulator.workspace import Workspace

APP_TOKEN_METHODS = frozenset({"apps.connections.open"})  # the only ones an xapp- token may call


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
