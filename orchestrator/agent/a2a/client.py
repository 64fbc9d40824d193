"""The A2A adapter's I/O: runs an AG-UI run input against an A2A agent with the `a2a-sdk` client.

The SDK speaks A2A 1.0 and, through its compatibility transport, 0.3 (Kagent's released
runtime), chosen from the agent's card. Everything this module decides is in the pure modules
beside it (`request`, `answers`, `translate`, `card`, `failures`); here are only the calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import httpx
from a2a.client import (
    A2ACardResolver,
    AgentCardResolutionError,
    Client,
    ClientCallContext,
    ClientConfig,
    ClientFactory,
)
from a2a.types import (
    AgentCard,
    CancelTaskRequest,
    GetTaskRequest,
    SendMessageRequest,
    StreamResponse,
    SubscribeToTaskRequest,
)
from a2a.utils.errors import A2AError, TaskNotCancelableError, TaskNotFoundError
from ag_ui.core import BaseEvent, RunAgentInput

from orchestrator.agent.a2a.answers import UnknownAnswer, answer_message
from orchestrator.agent.a2a.card import CARD_PATHS, CardFacts, called_card, facts, problems
from orchestrator.agent.a2a.failures import escape, from_card_error, from_client_error
from orchestrator.agent.a2a.questions import HITL_EXTENSION
from orchestrator.agent.a2a.request import NothingToSend, user_message
from orchestrator.agent.a2a.translate import TaskStream
from orchestrator.agent.errors import (
    AgentAuthError,
    AgentError,
    AgentNotFound,
    AgentTimeout,
    MalformedEvent,
    StreamIncomplete,
    TaskGone,
)
from orchestrator.agent.network import agent_http_client
from orchestrator.agent.pool import connection_limits
from orchestrator.agent.targets import AgentTarget

logger = logging.getLogger("orchestrator.agent")

EXTENSIONS_HEADER = "A2A-Extensions"


class A2AClient:
    """Runs A2A agents. One instance serves every A2A target; `aclose()` when done."""

    protocol = "a2a"

    def __init__(
        self,
        *,
        first_event_timeout: float = 60.0,
        idle_timeout: float = 300.0,
        card_ttl: float = 300.0,
        connect_timeout: float = 10.0,
        max_runs: int = 1000,
    ) -> None:
        self.first_event_timeout = first_event_timeout
        self.idle_timeout = idle_timeout
        self.card_ttl = card_ttl
        timeout = httpx.Timeout(connect=connect_timeout, read=None, write=30.0, pool=30.0)
        self._http = agent_http_client(timeout=timeout, limits=connection_limits(max_runs))
        self._card_timeout = httpx.Timeout(first_event_timeout, connect=connect_timeout)
        self._factory = ClientFactory(ClientConfig(httpx_client=self._http, streaming=True))
        self._cards: dict[str, tuple[float, AgentCard]] = {}

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- the seam ----------------------------------------------------------------------------

    async def stream(
        self, target: AgentTarget, run_input: RunAgentInput
    ) -> AsyncGenerator[BaseEvent, None]:
        """One run: a new turn, or the answer to a paused task when `run_input.resume` is set."""
        try:
            message = (
                answer_message(run_input.resume, run_input.thread_id)
                if run_input.resume
                else user_message(run_input)
            )
        except (UnknownAnswer, NothingToSend) as exc:
            raise MalformedEvent(str(exc), url=target.url) from None
        task = TaskStream(thread_id=run_input.thread_id, run_id=run_input.run_id)
        yield task.started()
        client, context = await self._client(target)
        request = SendMessageRequest(message=message)
        responses = client.send_message(request, context=context)
        async for event in self._follow(target, responses, task):
            yield event
        async for event in self._finish(target, client, context, task, resubscribe=True):
            yield event

    async def reattach(
        self, target: AgentTarget, run_input: RunAgentInput, task_id: str
    ) -> AsyncGenerator[BaseEvent, None]:
        """Follows a task started before (e.g. by a process that has since restarted) to its end:
        what it has produced so far (`GetTask`), then its updates (`SubscribeToTask`).

        Raises `TaskGone` when the agent no longer knows the task.
        """
        task = TaskStream(thread_id=run_input.thread_id, run_id=run_input.run_id)
        yield task.started()
        client, context = await self._client(target)
        task.task_id = task_id
        for event in task.feed(await self._snapshot(target, client, context, task_id)):
            yield event
        if not task.ended:
            subscription = client.subscribe(SubscribeToTaskRequest(id=task_id), context=context)
            try:
                async for event in self._follow(target, subscription, task):
                    yield event
            except TaskGone:
                raise
            except AgentError as exc:
                logger.info("Re-attaching to a task by subscription failed: %s", exc.kind)
        async for event in self._finish(target, client, context, task, resubscribe=False):
            yield event

    async def cancel(
        self, target: AgentTarget, run_input: RunAgentInput, task_id: str | None
    ) -> None:
        """Someone stopped the run: the agent cancels its task (`CancelTask`). A task that has
        ended already cannot be cancelled, and needs not be; without a task there is none."""
        if not task_id:
            return
        client, context = await self._client(target)
        try:
            await client.cancel_task(CancelTaskRequest(id=task_id), context=context)
        except TaskNotCancelableError:
            logger.info("The stopped run's task had ended already.")
        except (A2AError, httpx.HTTPError) as exc:
            error = from_client_error(exc, received=0)
            error.url = error.url or target.url
            raise error from exc

    async def card(self, target: AgentTarget, *, fresh: bool = False) -> AgentCard:
        """The agent's card (cached for `card_ttl` seconds unless `fresh`)."""
        cached = self._cards.get(target.url)
        if cached is not None and not fresh and time.monotonic() - cached[0] < self.card_ttl:
            return cached[1]
        headers = await target.request_headers()
        resolver = A2ACardResolver(self._http, target.url)
        card: AgentCard | None = None
        for index, path in enumerate(CARD_PATHS):
            try:
                card = await resolver.get_agent_card(
                    relative_card_path=path,
                    http_kwargs={"headers": headers, "timeout": self._card_timeout},
                )
                break
            except AgentCardResolutionError as exc:
                error = from_card_error(exc, target.url)
                if isinstance(error, AgentAuthError):
                    target.credentials_refused()
                if not isinstance(error, AgentNotFound) or index == len(CARD_PATHS) - 1:
                    raise error from None
        assert card is not None
        self._cards[target.url] = (time.monotonic(), card)
        return card

    async def describe(self, target: AgentTarget) -> tuple[CardFacts, list[str]]:
        """What the agent's card says, and what is wrong with it, without starting a task."""
        card = await self.card(target, fresh=True)
        return facts(called_card(card, target.url)), problems(card)

    # --- the calls ---------------------------------------------------------------------------

    async def _client(self, target: AgentTarget) -> tuple[Client, ClientCallContext]:
        card = await self.card(target)
        headers = await target.request_headers()
        if facts(card).hitl:
            headers[EXTENSIONS_HEADER] = HITL_EXTENSION
        try:
            client = self._factory.create(called_card(card, target.url))
        except ValueError as exc:
            raise MalformedEvent(
                f"The agent's card offers no transport this client speaks ({escape(str(exc))}).",
                url=target.url,
            ) from None
        return client, ClientCallContext(service_parameters=headers)

    async def _follow(
        self, target: AgentTarget, responses: AsyncIterator[StreamResponse], task: TaskStream
    ) -> AsyncGenerator[BaseEvent, None]:
        """Translates stream results until the run ends or the stream closes."""
        received = 0
        iterator = aiter(responses)
        try:
            while not task.ended:
                limit = self.idle_timeout if received else self.first_event_timeout
                try:
                    async with asyncio.timeout(limit):
                        response = await anext(iterator)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    raise self._silent(received) from None
                received += 1
                for event in task.feed(response):
                    yield event
        except (A2AError, httpx.HTTPError) as exc:
            error = from_client_error(exc, received=received)
            if isinstance(error, AgentAuthError):
                target.credentials_refused()
            error.url = error.url or target.url
            raise error from exc
        finally:
            await _close(iterator)

    async def _finish(
        self,
        target: AgentTarget,
        client: Client,
        context: ClientCallContext,
        task: TaskStream,
        *,
        resubscribe: bool,
    ) -> AsyncGenerator[BaseEvent, None]:
        """The closing events. A stream that closed before its task ended is followed once more
        (`resubscribe`), then completed from the task's state."""
        if resubscribe and not task.ended and task.task_id:
            again = SubscribeToTaskRequest(id=task.task_id)
            subscription = client.subscribe(again, context=context)
            try:
                async for event in self._follow(target, subscription, task):
                    yield event
            except AgentError as exc:
                logger.info("Following a task after its stream closed failed: %s", exc.kind)
        if not task.ended and task.task_id:
            for event in task.feed(await self._snapshot(target, client, context, task.task_id)):
                yield event
        if not task.ended:
            raise StreamIncomplete(
                "The agent's stream ended before its task finished.", url=target.url
            )
        for event in task.end():
            yield event

    async def _snapshot(
        self, target: AgentTarget, client: Client, context: ClientCallContext, task_id: str
    ) -> StreamResponse:
        """The task as the agent holds it now, as a stream result."""
        try:
            snapshot = await client.get_task(GetTaskRequest(id=task_id), context=context)
        except TaskNotFoundError as exc:
            raise TaskGone(
                f"The agent does not know task {escape(task_id, 80)}.", url=target.url
            ) from exc
        except (A2AError, httpx.HTTPError) as exc:
            error = from_client_error(exc, received=0)
            error.url = error.url or target.url
            raise error from exc
        response = StreamResponse()
        response.task.CopyFrom(snapshot)
        return response

    def _silent(self, received: int) -> AgentTimeout:
        if not received:
            return AgentTimeout(
                f"The agent sent nothing within {self.first_event_timeout:g} seconds."
            )
        return AgentTimeout(
            f"The agent went silent for {self.idle_timeout:g} seconds after {received} updates."
        )


async def _close(iterator: Any) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        with contextlib.suppress(A2AError, httpx.HTTPError, RuntimeError):
            await close()
