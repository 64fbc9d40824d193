"""chat.* (post, update, ephemeral, delete, permalink) and reactions.*."""

from __future__ import annotations

from typing import Any

from orchestrator.sandbox.slack_emulator.records import SlackApiFailure, StoredMessage
from orchestrator.sandbox.slack_emulator.validation import content
from orchestrator.sandbox.slack_emulator.workspace import Workspace


class ChatMethods(Workspace):
    def _post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        text, blocks = content(params)
        if not text and not blocks and not params.get("attachments"):
            raise SlackApiFailure("no_text")
        message = self._bot_message(channel, params.get("thread_ts"), text or "", blocks or [])
        metadata = params.get("metadata")
        if metadata is not None:
            if not isinstance(metadata, dict) or not isinstance(metadata.get("event_type"), str):
                raise SlackApiFailure("invalid_metadata_format")
            message.metadata = metadata
        self._store(message)
        return {"channel": channel, "ts": message.ts, "message": self._message_json(message)}

    def _update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        message = self._find(channel, params.get("ts"))
        if self._live_stream(message) is not None:
            raise SlackApiFailure("streaming_state_conflict")
        if message.user != self.bot_user_id:
            raise SlackApiFailure("cant_update_message")
        text, blocks = content(params)
        new_text = message.text if text is None else text
        new_blocks = message.blocks if blocks is None else blocks
        if not new_text and not new_blocks:
            raise SlackApiFailure("no_text")
        message.text, message.blocks = new_text, new_blocks
        message.edits += 1
        return {
            "channel": channel,
            "ts": message.ts,
            "text": message.text,
            "message": self._message_json(message),
        }

    def _post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        user = params.get("user")
        if not user:
            raise SlackApiFailure("user_not_found")
        text, blocks = content(params)
        if not text and not blocks and not params.get("attachments"):
            raise SlackApiFailure("no_text")
        message = self._bot_message(channel, params.get("thread_ts"), text or "", blocks or [])
        message.ephemeral_user = str(user)
        self._ephemerals.append(message)
        return {"message_ts": message.ts}

    def _delete(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        message = self._find(channel, params.get("ts"))
        if self._live_stream(message) is not None or message.user != self.bot_user_id:
            raise SlackApiFailure("cant_delete_message")
        del self._messages[(channel, message.ts)]
        self._streams.pop((channel, message.ts), None)
        return {"channel": channel, "ts": message.ts}

    def _reactions_add(self, params: dict[str, Any]) -> dict[str, Any]:
        message, name = self._reaction_target(params)
        if name in message.reactions:
            raise SlackApiFailure("already_reacted")
        message.reactions.append(name)
        return {}

    def _reactions_remove(self, params: dict[str, Any]) -> dict[str, Any]:
        message, name = self._reaction_target(params)
        if name not in message.reactions:
            raise SlackApiFailure("no_reaction")
        message.reactions.remove(name)
        return {}

    def _reaction_target(self, params: dict[str, Any]) -> tuple[StoredMessage, str]:
        channel = self._channel(params)
        message = self._find(channel, params.get("timestamp"))
        name = str(params.get("name") or "").strip(":")
        if not name:
            raise SlackApiFailure("invalid_name")
        return message, name

    def _permalink(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        message = self._find(channel, params.get("message_ts"))
        archive = f"{self._base_url}/archives/{channel}/p{message.ts.replace('.', '')}"
        return {"channel": channel, "permalink": archive}
