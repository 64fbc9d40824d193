"""Which publisher a run gets, from `ORCH_SLACK_STREAMING` (`auto`, `native` or `update`).

- `update`: `Publisher` (the first message, then throttled `chat.update`s).
- `native`: `NativePublisher` for every run; a run whose stream Slack refuses goes on with
  `chat.update` (the next run tries native again).
- `auto`: like `native` until Slack says the workspace does not offer native streaming
  (`unknown_method`, `not_allowed_token_type`, `missing_scope`, `feature_not_enabled`, HTTP 404):
  from then on, for the life of the process, every run gets `Publisher`.

Bot senders (`final_only`) always get `Publisher`: they receive one final message.

The engine's seam is one line:

    publisher = self.streaming.publisher(
        thread.channel_id, thread.thread_ts, view, requester=thread.requester,
        team_id=thread.team_id, final_only=thread.requester_is_bot,
    )
"""

from __future__ import annotations

import logging
from typing import Literal

from slack_sdk.web.async_client import AsyncWebClient

from orchestrator.slack.native_publisher import NativePublisher
from orchestrator.slack.publisher import Publisher
from renderers.view import ThreadView

log = logging.getLogger("orchestrator.streaming_mode")

Mode = Literal["auto", "native", "update"]


class StreamingMode:
    def __init__(
        self,
        setting: Mode,
        client: AsyncWebClient,
        *,
        interval: float = 1.0,
        max_chars: int = 3000,
        max_age: float = 210.0,
    ) -> None:
        if setting not in ("auto", "native", "update"):
            raise ValueError(f"streaming must be auto, native or update, not {setting!r}")
        self.setting: Mode = setting
        self.client = client
        self.interval = interval
        self.max_chars = max_chars
        self.max_age = max_age
        self.unsupported: str | None = None  # in auto mode: why native streaming is off for good

    @property
    def uses_native(self) -> bool:
        """Whether the next (human) run streams natively."""
        return self.setting == "native" or (self.setting == "auto" and self.unsupported is None)

    def publisher(
        self,
        channel: str,
        thread_ts: str,
        view: ThreadView,
        *,
        requester: str | None = None,
        team_id: str | None = None,
        final_only: bool = False,
    ) -> Publisher | NativePublisher:
        if final_only or not self.uses_native:
            return Publisher(
                self.client, channel, thread_ts, interval=self.interval, final_only=final_only
            )
        return NativePublisher(
            self.client,
            channel,
            thread_ts,
            view,
            recipient_user_id=requester,
            recipient_team_id=team_id,
            interval=self.interval,
            max_chars=self.max_chars,
            max_age=self.max_age,
            on_unsupported=self._native_unsupported,
        )

    def _native_unsupported(self, error: str) -> None:
        if self.setting == "auto" and self.unsupported is None:
            self.unsupported = error
            log.warning(
                "native streaming is not available here; using chat.update from now on",
                extra={"error": error},
            )
