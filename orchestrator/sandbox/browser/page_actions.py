"""What a person does in the page, done as Slack does it: a message is stored in the emulated
workspace and delivered to the service as a signed event (retried while the service is down, as
Slack retries), a click or a submitted modal is a signed interactivity payload."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Coroutine
from typing import Any

import httpx

from orchestrator.sandbox import slack_delivery
from orchestrator.sandbox.browser.activity import SlackCallLog
from orchestrator.sandbox.browser.changes import Changes
from orchestrator.sandbox.browser.page_data import PageData
from orchestrator.sandbox.browser.people import BOT_NAME, Person
from orchestrator.sandbox.browser.service_child import ServiceChild
from orchestrator.sandbox.slack_emulator import SlackEmulator

EVENT_RETRIES = 3  # Slack retries an event delivery three times
RETRY_WAIT = 90.0  # seconds a retry waits for the service to be running again
_MENTION = re.compile(rf"@{BOT_NAME}\b\s*", re.IGNORECASE)


class ActionRefused(ValueError):
    """What the page asked for cannot be done; the message says why."""


class PageActions:
    def __init__(
        self,
        slack: SlackEmulator,
        service: ServiceChild,
        signing_secret: str,
        people: list[Person],
        calls: SlackCallLog,
        data: PageData,
        changes: Changes,
    ) -> None:
        self.slack = slack
        self.service = service
        self.secret = signing_secret
        self.people = {person.id: person for person in people}
        self.calls = calls
        self.data = data
        self.changes = changes
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- messages ------------------------------------------------------------------------------

    def write(self, channel: str, user: str, text: str, thread_ts: str | None) -> str:
        """Post as `user`; "@Orchestrator" anywhere in the text mentions the bot."""
        person = self._person(user)
        mention = _MENTION.search(text) is not None
        if mention:
            text = _MENTION.sub("", text, count=1).strip()
        try:
            event = self.slack.post_user_message(
                channel, person.id, text, thread_ts or None, bot_id=person.bot_id, mention=mention
            )
        except ValueError as exc:
            raise ActionRefused(str(exc)) from exc
        self.changes.bump()
        self._spawn(self._deliver_event(event))
        return str(event["ts"])

    async def _deliver_event(self, event: dict[str, Any]) -> None:
        event_id = slack_delivery.new_event_id()
        for attempt in range(EVENT_RETRIES + 1):
            if attempt and not await self.service.wait_running(RETRY_WAIT):
                continue
            try:
                response = await self.slack.deliver_event(
                    self.service.events_url,
                    self.secret,
                    event,
                    event_id=event_id,
                    retry_num=attempt or None,
                )
            except httpx.TransportError:
                await asyncio.sleep(0.5)
                continue
            if response.status_code < 500:
                return
        self.changes.notice(
            f"Slack gave up delivering the message {event['ts']}: the service did not take it "
            f"in {EVENT_RETRIES + 1} tries."
        )

    # --- clicks and modals ---------------------------------------------------------------------

    async def click(
        self,
        *,
        channel: str,
        user: str,
        message_ts: str,
        action_id: str,
        block_id: str,
        value: str,
        state_values: dict[str, Any],
        selection: dict[str, Any] | None,
    ) -> None:
        person = self._person(user)
        try:
            payload = self.slack.block_actions_payload(
                user=person.id,
                channel=channel,
                message_ts=message_ts,
                action_id=action_id,
                value=value,
                block_id=block_id,
                state_values=state_values,
                selection=selection,
            )
        except KeyError as exc:
            raise ActionRefused("that message is gone") from exc
        self.calls.trigger_users[payload["trigger_id"]] = person.id
        await self._deliver_interaction(payload, "click")

    async def submit_modal(
        self, view_id: str, user: str, state_values: dict[str, Any]
    ) -> dict[str, str]:
        """Submit a modal; the errors the service answered with (empty: the modal closes)."""
        person = self._person(user)
        view = next((v for v in self.slack.views_opened() if v["id"] == view_id), None)
        if view is None or view_id in self.data.closed_views:
            raise ActionRefused("that modal is closed")
        payload = self.slack.view_submission_payload(
            user=person.id,
            callback_id=str(view.get("callback_id", "")),
            private_metadata=str(view.get("private_metadata", "")),
            state_values=state_values,
        )
        self.calls.trigger_users[payload["trigger_id"]] = person.id
        answer = await self._deliver_interaction(payload, "modal")
        if answer.get("response_action") == "errors" and isinstance(answer.get("errors"), dict):
            return {str(k): str(v) for k, v in answer["errors"].items()}
        if answer.get("response_action") == "update" and isinstance(answer.get("view"), dict):
            view.update(answer["view"])
        else:
            self.data.closed_views.add(view_id)
        self.changes.bump()
        return {}

    def close_modal(self, view_id: str) -> None:
        self.data.closed_views.add(view_id)
        self.changes.bump()

    async def _deliver_interaction(self, payload: dict[str, Any], what: str) -> dict[str, Any]:
        """Slack does not retry interactions: a service that does not answer gets a warning."""
        try:
            response = await self.slack.deliver_action(
                self.service.events_url, self.secret, payload
            )
        except httpx.TransportError as exc:
            raise ActionRefused(
                f"The service did not answer the {what} ({self.service.status}). Slack shows a "
                "warning to the person and does not send it again."
            ) from exc
        if response.status_code >= 400:
            raise ActionRefused(f"The service answered the {what} with HTTP {response.status_code}")
        try:
            answer = json.loads(response.content or b"{}")
        except ValueError:
            return {}
        return answer if isinstance(answer, dict) else {}

    # --- the stream's Stop button, and the service ---------------------------------------------

    def stop_stream(self, channel: str, ts: str) -> None:
        if self.slack.message(channel, ts) is None:
            raise ActionRefused("that message is gone")
        self.slack.stop_stream_by_user(channel, ts)
        self.changes.bump()

    def restart_service(self) -> None:
        if self.service.status in ("starting", "restarting"):
            raise ActionRefused("the service is already starting")
        self._spawn(self._restart())

    async def _restart(self) -> None:
        try:
            await self.service.restart()
        except Exception as exc:  # shown on the page; the next Restart tries again
            self.changes.notice(f"The service did not start again: {exc}", level="error")

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _person(self, user: str) -> Person:
        person = self.people.get(user)
        if person is None:
            raise ActionRefused(f"nobody in the sandbox is {user!r}")
        return person

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
