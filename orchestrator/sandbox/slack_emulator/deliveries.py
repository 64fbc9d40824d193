"""Delivering signed events and interactivity payloads to the app under test, over HTTP or Socket
Mode."""

from __future__ import annotations

from typing import Any

import httpx

from orchestrator.sandbox import slack_delivery
from orchestrator.sandbox.slack_emulator.records import API_APP_ID, VERIFICATION_TOKEN
from orchestrator.sandbox.slack_emulator.workspace import Workspace


class Deliveries(Workspace):
    async def deliver_event(
        self,
        app_url: str,
        signing_secret: str,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        timestamp: int | None = None,
        signature: str | None = None,
        wait: float = slack_delivery.DELIVERY_TIMEOUT,
    ) -> httpx.Response:
        """`wait`: how long to wait for the app's answer (a burst of deliveries at once on a
        busy machine may need longer than one alone)."""
        body, content_type = slack_delivery.json_body(self._envelope(event, event_id))
        return await slack_delivery.signed_post(
            app_url, signing_secret, body, content_type, timestamp, signature, retry_num, wait
        )

    async def deliver_action(
        self,
        app_url: str,
        signing_secret: str,
        payload: dict[str, Any],
        *,
        retry_num: int | None = None,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        body, content_type = slack_delivery.interactivity_body(payload)
        return await slack_delivery.signed_post(
            app_url, signing_secret, body, content_type, timestamp, signature, retry_num
        )

    async def push_event(
        self, event: dict[str, Any], *, event_id: str | None = None, retry_attempt: int = 0
    ) -> dict[str, Any]:
        """The Socket Mode delivery of `event`: an `events_api` envelope; returns the app's ack."""
        envelope = self._envelope(event, event_id)
        return await self.socket_mode.push("events_api", envelope, retry_attempt=retry_attempt)

    def _envelope(self, event: dict[str, Any], event_id: str | None) -> dict[str, Any]:
        """The Events API envelope Slack wraps `event` in, over HTTP and Socket Mode alike."""
        return slack_delivery.event_envelope(
            event,
            team_id=self.team_id,
            api_app_id=API_APP_ID,
            bot_user_id=self.bot_user_id,
            event_id=event_id or slack_delivery.new_event_id(),
            verification_token=VERIFICATION_TOKEN,
        )

    async def push_action(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The Socket Mode delivery of an interactivity payload; returns the app's ack."""
        return await self.socket_mode.push("interactive", payload)
