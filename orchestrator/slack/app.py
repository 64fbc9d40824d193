"""The bolt app: which listener (`orchestrator.slack.listeners`) takes which event, click and
form. Bolt verifies signatures (HTTP mode); a delivery is acknowledged once its listener has
stored what it asks for (`process_before_response`), in HTTP mode and in Socket Mode alike, so a
crash before that leaves Slack to deliver it again."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt import BoltResponse
from slack_bolt.async_app import AsyncApp
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_bolt.middleware.authorization.async_single_team_authorization import (
    AsyncSingleTeamAuthorization,
)
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from orchestrator.engine import Engine
from orchestrator.slack import request_guard
from orchestrator.slack.listeners import Listeners
from renderers.common import (
    ACTION_APPROVE,
    ACTION_EDIT_ARGS,
    ACTION_ESCALATE,
    ACTION_ESCALATE_ERROR,
    ACTION_REGENERATE,
    ACTION_REJECT,
    ACTION_RETRY,
    ACTION_STOP,
    ACTION_THUMBS_DOWN,
    ACTION_THUMBS_UP,
    EDIT_ARGS_CALLBACK_ID,
    FEEDBACK_CALLBACK_ID,
)

log = logging.getLogger("orchestrator.slack")

_ANY = re.compile(".*")


class _TokenSkippedFilter(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN itself, and warns that it skips it when given a client. We
    hand it the client built from that same token (with our retries and API URL), so the
    warning, at every start, says nothing an operator should act on."""

    _said = warning_client_prioritized_and_token_skipped()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != self._said


# The event types the bot acts on; the manifest's bot events are their Slack subscriptions.
HANDLED_EVENTS = ("app_mention", "message", "agent_session_stopped", "app_home_opened")

_bolt_log = logging.getLogger("slack_bolt.AsyncApp")
_bolt_log.addFilter(_TokenSkippedFilter())


async def _well_formed(body: dict[str, Any], next: Callable[[], Awaitable[Any]]) -> Any:
    """A delivery that bolt or the listeners could not read gets a 400 (Socket Mode too; over
    HTTP the runtime refuses it before bolt parses it)."""
    problem = request_guard.shape_error(body) if isinstance(body, dict) else "not an object"
    if problem:
        log.info("delivery refused", extra={"reason": problem})
        return BoltResponse(status=400, body=problem)
    return await next()


class _Authorization(AsyncSingleTeamAuthorization):
    """Bolt's single-workspace authorization, except that when Slack cannot be asked who the
    bot is (`auth.test` fails), the delivery gets a 503, so Slack delivers it again, instead of
    bolt's 200 that acknowledges it unread; and that the deliveries arriving before the first
    answer share one `auth.test` (bolt's cache is filled only once a call returns, so a burst
    after a start would ask once per delivery)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._asking: asyncio.Future[AsyncSlackResponse] | None = None

    async def async_process(
        self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[Any]]
    ) -> BoltResponse:
        if self.auth_test_result is None:
            if self._asking is None:
                self._asking = asyncio.ensure_future(req.context.client.auth_test())
                self._asking.add_done_callback(self._asked)
            try:
                # Shielded: a delivery cut short does not cancel the others' question.
                self.auth_test_result = await asyncio.shield(self._asking)
            except SlackApiError as exc:
                log.warning("delivery not taken: auth.test failed", extra={"error": str(exc)})
                return BoltResponse(status=503, body="Slack could not be reached; retry")
        return await super().async_process(req=req, resp=resp, next=next)

    def _asked(self, asking: asyncio.Future[AsyncSlackResponse]) -> None:
        self._asking = None  # answered or failed: the next delivery without a result asks again
        if not asking.cancelled():
            asking.exception()  # retrieved here too: every waiter may have gone


def _strict_authorization(app: AsyncApp) -> None:
    # Bolt offers no switch for this: its authorization middleware is replaced in its list.
    middleware = app._async_middleware_list
    for index, item in enumerate(middleware):
        if type(item) is AsyncSingleTeamAuthorization:
            middleware[index] = _Authorization(base_logger=_bolt_log)


def build_app(engine: Engine, client: AsyncWebClient, signing_secret: str | None) -> AsyncApp:
    """The bolt app. `signing_secret` is required in HTTP mode (requests are verified with it)."""
    app = AsyncApp(
        logger=_bolt_log,
        client=client,
        signing_secret=signing_secret,
        request_verification_enabled=signing_secret is not None,
        process_before_response=True,
        raise_error_for_unhandled_request=False,
        before_authorize=_well_formed,  # before bolt's own middleware reads the body
    )
    _strict_authorization(app)
    listeners = Listeners(engine)
    handlers = {
        "app_mention": listeners.on_mention,
        "message": listeners.on_message,
        "agent_session_stopped": listeners.on_session_stopped,
        "app_home_opened": listeners.on_home_opened,
    }
    # The app manifest subscribes to exactly these (orchestrator/slack/manifest.py).
    for event_type in HANDLED_EVENTS:
        app.event(event_type)(handlers[event_type])
    app.action(ACTION_STOP)(listeners.on_stop)
    app.action(ACTION_RETRY)(listeners.on_retry)
    app.action(ACTION_APPROVE)(listeners.on_answer)
    app.action(ACTION_REJECT)(listeners.on_answer)
    app.action(ACTION_EDIT_ARGS)(listeners.on_edit_args)
    app.action(ACTION_THUMBS_UP)(listeners.on_rating)
    app.action(ACTION_THUMBS_DOWN)(listeners.on_rating)
    app.action(ACTION_REGENERATE)(listeners.on_regenerate)
    app.action(ACTION_ESCALATE)(listeners.on_escalate)
    app.action(ACTION_ESCALATE_ERROR)(listeners.on_escalate_error)
    app.view(FEEDBACK_CALLBACK_ID)(listeners.on_feedback_details)
    app.view(EDIT_ARGS_CALLBACK_ID)(listeners.on_edited_args)
    # Last, so they only get what nothing above takes: acknowledged, since Slack retries what
    # is not, warns the clicker, and turns off an app's events when most of them fail.
    app.event(_ANY)(listeners.on_other_event)
    app.action(_ANY)(listeners.on_other_action)
    app.view(_ANY)(listeners.on_other_action)
    return app
