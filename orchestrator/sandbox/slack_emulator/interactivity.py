"""Button clicks: the block_actions payload, and what the app posts to its response_url."""

from __future__ import annotations

import secrets
import time
from typing import Any

from orchestrator.sandbox import slack_delivery
from orchestrator.sandbox.slack_emulator.records import (
    API_APP_ID,
    VERIFICATION_TOKEN,
    ResponseTarget,
    SlackApiFailure,
    StoredMessage,
)
from orchestrator.sandbox.slack_emulator.validation import content
from orchestrator.sandbox.slack_emulator.workspace import Workspace


class Interactivity(Workspace):
    def block_actions_payload(
        self,
        *,
        user: str,
        channel: str,
        message_ts: str,
        action_id: str,
        value: str,
        block_id: str = "actions",
        thread_ts: str | None = None,
        state_values: dict[str, Any] | None = None,
        trigger_id: str | None = None,
        selection: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A button click on a stored message (or ephemeral), shaped like Slack's payload.

        `selection` is what another element sends instead of a button's value: its `type` and
        `selected_option`, `selected_options`, `selected_date`, …."""
        message = self._messages.get((channel, message_ts))
        source = message or self._find_ephemeral(channel, message_ts)
        if source is None:
            raise KeyError(f"no message {message_ts} in {channel}")
        thread = thread_ts or source.thread_ts
        is_ephemeral = message is None
        container: dict[str, Any] = {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": is_ephemeral,
        }
        if thread:
            container["thread_ts"] = thread
        target = ResponseTarget(channel, user, thread, message_ts, is_ephemeral)
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": slack_delivery.user_object(user, self.team_id),
            "api_app_id": API_APP_ID,
            "token": VERIFICATION_TOKEN,
            "container": container,
            "trigger_id": trigger_id or self._issue_trigger(),
            "team": {"id": self.team_id, "domain": "sandbox"},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": channel.lower()},
            "state": {"values": state_values or {}},
            "response_url": self._issue_response_url(target),
            "actions": [_action(source.blocks, action_id, block_id, value, selection)],
        }
        if message is not None:
            payload["message"] = self._message_json(message)
            if thread:
                payload["message"]["thread_ts"] = thread
        return payload

    def _apply_response(self, target: ResponseTarget, body: dict[str, Any]) -> None:
        if _flag(body.get("delete_original")):
            self._delete_original(target)
            return
        text, blocks = content(body)
        if not text and not blocks:
            raise SlackApiFailure("no_text")
        if _flag(body.get("replace_original")):
            original = self._original(target)
            original.text, original.blocks = text or "", blocks or []
            original.edits += 1
            return
        thread_ts = body.get("thread_ts") or target.thread_ts
        message = self._bot_message(target.channel, thread_ts, text or "", blocks or [])
        if body.get("response_type") == "in_channel":
            self._store(message)
        else:
            message.ephemeral_user = target.user
            self._ephemerals.append(message)

    def _original(self, target: ResponseTarget) -> StoredMessage:
        if target.ephemeral:
            found = self._find_ephemeral(target.channel, target.message_ts)
        else:
            found = self._messages.get((target.channel, target.message_ts))
        if found is None:
            raise SlackApiFailure("message_not_found")
        return found

    def _delete_original(self, target: ResponseTarget) -> None:
        original = self._original(target)
        if target.ephemeral:
            self._ephemerals.remove(original)
        else:
            del self._messages[(original.channel, original.ts)]

    def _issue_response_url(self, target: ResponseTarget) -> str:
        if not self._base_url:
            raise RuntimeError("start() the emulator before building interactivity payloads")
        response_id = secrets.token_hex(8)
        self._response_targets[response_id] = target
        return f"{self._base_url}/response/{response_id}"


def _action(
    blocks: list[dict[str, Any]],
    action_id: str,
    block_id: str,
    value: str,
    selection: dict[str, Any] | None = None,
) -> dict[str, Any]:
    action: dict[str, Any] = {
        "action_id": action_id,
        "block_id": block_id,
        "value": value,
        "type": "button",
        "action_ts": f"{time.time():.6f}",
    }
    element = _find_element(blocks, block_id, action_id)
    if element is not None and "text" in element:
        action["text"] = element["text"]
    if selection:
        action.pop("value")
        action.update(selection)
    return action


def _find_element(
    blocks: list[dict[str, Any]],
    block_id: str,
    action_id: str,
) -> dict[str, Any] | None:
    for block in blocks:
        if block.get("block_id") != block_id:
            continue
        candidates = [*(block.get("elements") or []), block.get("accessory"), block.get("element")]
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return element
    return None


def _flag(value: Any) -> bool:
    return value in (True, 1, "true", "1")
