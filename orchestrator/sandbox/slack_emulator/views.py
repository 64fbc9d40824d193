"""views.open, views.push and views.update (modals), trigger ids, and a submitted modal's
payload."""

from __future__ import annotations

import secrets
import time
from typing import Any

from orchestrator.sandbox import slack_delivery
from orchestrator.sandbox.slack_emulator.records import (
    API_APP_ID,
    VERIFICATION_TOKEN,
    SlackApiFailure,
)
from orchestrator.sandbox.slack_emulator.validation import checked_view
from orchestrator.sandbox.slack_emulator.workspace import Workspace


class ViewsMethods(Workspace):
    def _views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        view = checked_view(params.get("view"))
        self._exchange_trigger(params.get("trigger_id"))
        view_id = "V" + secrets.token_hex(5).upper()
        record = {
            **view,
            "id": view_id,
            "team_id": self.team_id,
            "app_id": API_APP_ID,
            "bot_id": self.bot_id,
            "callback_id": view.get("callback_id", ""),
            "private_metadata": view.get("private_metadata", ""),
            "external_id": view.get("external_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "root_view_id": view_id,
            "previous_view_id": None,
        }
        self._views[view_id] = record
        return {"view": record}

    def _views_update(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self._find_view(params.get("view_id"), params.get("external_id"))
        view = checked_view(params.get("view"))
        record.update(view)
        record["hash"] = f"{int(time.time())}.{secrets.token_hex(4)}"
        return {"view": record}

    def _find_view(self, view_id: Any, external_id: Any) -> dict[str, Any]:
        for record in self._views.values():
            if view_id and record["id"] == view_id:
                return record
            if external_id and record.get("external_id") == external_id:
                return record
        raise SlackApiFailure("not_found")

    def _exchange_trigger(self, trigger_id: Any) -> None:
        """Triggers issued here expire and work once; ids made up by a test are accepted."""
        if not trigger_id:
            raise SlackApiFailure("invalid_trigger_id")
        if trigger_id not in self._triggers:
            return
        issued_at = self._triggers[trigger_id]
        if issued_at is None:
            raise SlackApiFailure("exchanged_trigger_id")
        if time.monotonic() - issued_at > self.trigger_ttl:
            raise SlackApiFailure("expired_trigger_id")
        self._triggers[trigger_id] = None

    def _latest_view(self, callback_id: str) -> dict[str, Any] | None:
        matches = [view for view in self._views.values() if view.get("callback_id") == callback_id]
        return matches[-1] if matches else None

    def _blank_view(self) -> dict[str, Any]:
        view_id = "V" + secrets.token_hex(5).upper()
        return {
            "id": view_id,
            "type": "modal",
            "blocks": [],
            "team_id": self.team_id,
            "app_id": API_APP_ID,
            "bot_id": self.bot_id,
            "root_view_id": view_id,
            "title": {"type": "plain_text", "text": "Sandbox"},
        }

    def view_submission_payload(
        self,
        *,
        user: str,
        callback_id: str,
        private_metadata: str,
        state_values: dict[str, Any],
    ) -> dict[str, Any]:
        """A modal submitted by `user`; the view is the latest opened with `callback_id`."""
        view = dict(self._latest_view(callback_id) or self._blank_view())
        view.update(
            callback_id=callback_id,
            private_metadata=private_metadata,
            state={"values": state_values},
        )
        return {
            "type": "view_submission",
            "team": {"id": self.team_id, "domain": "sandbox"},
            "user": slack_delivery.user_object(user, self.team_id),
            "api_app_id": API_APP_ID,
            "token": VERIFICATION_TOKEN,
            "trigger_id": self._issue_trigger(),
            "view": view,
            "response_urls": [],
            "enterprise": None,
            "is_enterprise_install": False,
        }
