"""The AI app surface: native streams (chat.startStream, appendStream, stopStream; the user's Stop
button) and assistant.threads.setStatus."""

from __future__ import annotations

import time
from typing import Any

from orchestrator.sandbox.slack_emulator.records import SlackApiFailure, StoredMessage
from orchestrator.sandbox.slack_emulator.stream_chunks import (
    TASK_DISPLAY_MODES,
    Stream,
    close_stream,
    extend_stream,
    read_chunks,
)
from orchestrator.sandbox.slack_emulator.validation import (
    MARKDOWN_TEXT_MAX,
    check_blocks,
    missing_field,
)
from orchestrator.sandbox.slack_emulator.workspace import Workspace


class AssistantMethods(Workspace):
    def _start_stream(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        if not params.get("thread_ts"):
            raise missing_field("thread_ts")
        mode = params.get("task_display_mode") or "timeline"
        if mode not in TASK_DISPLAY_MODES:
            raise SlackApiFailure("invalid_arguments")
        stream = Stream(started_at=time.monotonic(), display_mode=mode)
        text, blocks, tasks = self._stream_input(stream, params, required=False)
        check_blocks(blocks)
        message = self._bot_message(channel, params["thread_ts"], "", [])
        message.streaming = True
        self._streams[(channel, message.ts)] = stream
        extend_stream(message, stream, text, blocks, tasks)
        self._store(message)
        return {"channel": channel, "ts": message.ts}

    def _append_stream(self, params: dict[str, Any]) -> dict[str, Any]:
        message, stream = self._streaming_message(params)
        text, blocks, tasks = self._stream_input(stream, params, required=True)
        check_blocks(blocks)
        extend_stream(message, stream, text, blocks, tasks)
        return {"channel": message.channel, "ts": message.ts}

    def _stop_stream(self, params: dict[str, Any]) -> dict[str, Any]:
        message, stream = self._streaming_message(params)
        text, blocks, tasks = self._stream_input(stream, params, required=False)
        check_blocks(blocks)
        final_blocks = params.get("blocks")
        if final_blocks is not None:
            check_blocks(final_blocks)  # its own 50-block limit, apart from the chunks' blocks
            if isinstance(final_blocks, list):
                blocks = blocks + final_blocks
        extend_stream(message, stream, text, blocks, tasks)
        close_stream(message, stream)
        return {
            "channel": message.channel,
            "ts": message.ts,
            "message": self._message_json(message),
        }

    def _streaming_message(self, params: dict[str, Any]) -> tuple[StoredMessage, Stream]:
        channel = self._channel(params)
        message = self._find(channel, params.get("ts"))
        stream = self._live_stream(message)
        if stream is None:
            ended = self._streams.get((channel, message.ts))
            if ended is not None and ended.stopped_by_user:
                raise SlackApiFailure("stopped_by_user")
            raise SlackApiFailure("message_not_in_streaming_state")
        return message, stream

    def _stream_input(
        self,
        stream: Stream,
        params: dict[str, Any],
        *,
        required: bool,
    ) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
        """The text, blocks and task chunks a stream call adds; raises before applying any."""
        markdown, chunks = params.get("markdown_text"), params.get("chunks")
        if required and markdown is None and not chunks:
            raise SlackApiFailure("no_text")
        text = "" if markdown is None else str(markdown)
        if len(text) > MARKDOWN_TEXT_MAX:
            raise SlackApiFailure("msg_too_long")
        chunk_text, blocks, tasks = read_chunks(chunks)
        text += chunk_text
        if len(stream.markdown) + len(text) > self.stream_max_chars:
            raise SlackApiFailure("msg_too_long")
        return text, blocks, tasks

    def _set_status(self, params: dict[str, Any]) -> dict[str, Any]:
        self._channel(params, "channel_id")
        for name in ("thread_ts", "status"):
            if params.get(name) is None:
                raise missing_field(name)
        self._statuses.append(dict(params))
        return {}

    def stop_stream_by_user(self, channel: str, ts: str) -> None:
        """What the Stop button in Slack's client does: later stream calls get `stopped_by_user`."""
        message = self._messages[(channel, ts)]
        stream = self._streams.get((channel, ts))
        if stream is not None and self._live_stream(message) is not None:
            stream.stopped_by_user = True
            close_stream(message, stream)
