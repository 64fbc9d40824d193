"""Socket Mode: bolt's handler, except that an envelope whose payload bolt could not read is
refused before bolt builds its request from it (no ack: it is not taken)."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_sdk.socket_mode.request import SocketModeRequest

from orchestrator import metrics
from orchestrator.answering import answering
from orchestrator.slack import request_guard
from persistence.write_turns import urgent

log = logging.getLogger("orchestrator.slack")


class GuardedSocketModeHandler(AsyncSocketModeHandler):
    async def handle(self, client: Any, req: SocketModeRequest) -> None:
        payload = req.payload
        problem = request_guard.shape_error(payload) if isinstance(payload, dict) else "no object"
        if problem:
            metrics.INBOUND.labels("request", "refused").inc()
            log.info("envelope refused", extra={"type": req.type, "reason": problem})
            return
        # Acknowledged once handled: its writes go first, and the runs it starts wait for it.
        with urgent(), answering():
            await super().handle(client, req)
