"""The running service: store, machine, clients, engine, bolt app and HTTP routes."""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import time
from collections.abc import Awaitable, Callable

import aiohttp
import certifi
import httpx
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from orchestrator import kill_points, metrics
from orchestrator.agent.agui.client import AgentClient
from orchestrator.agent.contract import ProtocolClient
from orchestrator.agent.network import agent_http_client
from orchestrator.agent.pool import connection_limits
from orchestrator.agent.targets import AgentResolver
from orchestrator.answering import answering
from orchestrator.config.channels import ChannelDirectory, load_config
from orchestrator.config.machine_source import machine_definition
from orchestrator.config.settings import Settings
from orchestrator.core.machine import ThreadMachine
from orchestrator.engine import Engine
from orchestrator.service.refused_requests import REFUSED, RefusedRequests
from orchestrator.service.scheduler import Scheduler
from orchestrator.slack import request_guard
from orchestrator.slack.app import build_app
from orchestrator.slack.publisher import PublisherFactory
from persistence.store import PoolLimits, Store
from persistence.write_turns import urgent

log = logging.getLogger("orchestrator.server")


async def _refusal(request: Request, secret: str | None) -> Response | None:
    """A 4xx for a request that is not a signed, well-formed Slack delivery (checked before
    the bolt app parses anything, so no request can make it fail)."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > request_guard.MAX_BODY:
        return PlainTextResponse("request too large", status_code=413)
    body = await request.body()
    refusal = request_guard.check(secret, request.headers, body, time.time())
    if refusal is None:
        return None
    metrics.INBOUND.labels("request", "refused").inc()
    return PlainTextResponse(refusal.reason, status_code=refusal.status)


SLACK_TIMEOUT = 30  # seconds for one Web API call (slack_sdk's default)


def slack_session() -> aiohttp.ClientSession:
    """The one HTTP session of every Web API call the process makes (the bolt app, the engine,
    its publishers and notifier, Socket Mode's calls): its connections are kept and reused.

    Without one, slack_sdk's async client opens a new session, so a new connection (against
    Slack a TLS handshake), for every call: about twice the CPU per call on this side.
    """
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=SLACK_TIMEOUT))


def slack_client(
    settings: Settings, session: aiohttp.ClientSession | None = None
) -> AsyncWebClient:
    """The Web API client, with slack_sdk's own retries for 429 (Retry-After), 5xx and resets,
    on `session` (see `slack_session`)."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    return AsyncWebClient(
        token=token,
        base_url=settings.slack_api_url,
        timeout=SLACK_TIMEOUT,
        session=session,
        retry_handlers=[
            AsyncRateLimitErrorRetryHandler(max_retry_count=5),
            AsyncServerErrorRetryHandler(max_retry_count=2),
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
        ],
    )


def channel_directory(settings: Settings) -> ChannelDirectory:
    headers = {}
    if settings.agent_bearer_token:
        headers["Authorization"] = f"Bearer {settings.agent_bearer_token.get_secret_value()}"
    return ChannelDirectory(
        load_config(
            settings.config_file,
            settings.inline_config.get_secret_value() if settings.inline_config else None,
        ),
        default_agent_url=settings.agent_url,
        agent_headers=headers,
        default_agent_protocol=settings.agent_protocol,
        approval_timeout=settings.approval_timeout,
        approval_reminder=settings.approval_reminder,
        max_bot_runs=settings.max_bot_runs,
    )


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context per process: building one (loading the CA bundle) costs ~50 ms."""
    return ssl.create_default_context(cafile=certifi.where())


class Runtime:
    """Owns every long-lived resource of one process; `start()` then `stop()`."""

    def __init__(
        self,
        settings: Settings,
        *,
        agents: AgentResolver | None = None,
        publishers: PublisherFactory | None = None,
        protocols: dict[str, ProtocolClient] | None = None,
    ) -> None:
        self.settings = settings
        self._agents = agents
        self._publishers = publishers
        self._protocols = protocols  # agent protocols besides AG-UI, by name (e.g. "a2a")
        self.store: Store
        self.engine: Engine
        self.app: AsyncApp
        self.scheduler: Scheduler
        self.channels: ChannelDirectory
        self._http: httpx.AsyncClient | None = None
        self._slack_http: aiohttp.ClientSession | None = None
        self._a2a: ProtocolClient | None = None
        self.recovered = False  # what the previous process left is finished (or tried)

    async def start(
        self,
        *,
        recover: bool = True,
        upgrade: bool = False,
        slack_check: Callable[[AsyncWebClient], Awaitable[None]] | None = None,
    ) -> None:
        """`upgrade`: bring a database an older release wrote up to date instead of refusing
        it (replicas doing so at once take turns). `slack_check` runs once the database is
        open, before any Slack call (recovery posts to Slack); what it raises stops the start."""
        settings = self.settings
        machine = ThreadMachine(machine_definition(settings.machine_file))
        channels = channel_directory(settings)
        self.channels = channels
        self.store = await Store.open(
            settings.database_url,
            busy_timeout=settings.database_busy_timeout,
            upgrade=upgrade,
            pool=PoolLimits(
                settings.database_pool_size,
                settings.database_max_overflow,
                settings.database_pool_timeout,
            ),
        )
        self._http = agent_http_client(
            verify=tls_context(),
            # The client's own watchdog times the first event and the silences between events
            # (ORCH_AGENT_FIRST_EVENT_TIMEOUT, ORCH_AGENT_IDLE_TIMEOUT); httpx's read timeout
            # only backs it up, so it must not cut a silence the idle timeout allows.
            timeout=httpx.Timeout(
                settings.agent_first_event_timeout,
                connect=settings.agent_connect_timeout,
                read=max(settings.agent_first_event_timeout, settings.agent_idle_timeout) + 5,
            ),
            limits=connection_limits(settings.max_concurrent_runs),
        )
        self._slack_http = slack_session()
        client = slack_client(settings, self._slack_http)
        if slack_check is not None:
            try:
                await slack_check(client)
            except BaseException:
                await self._slack_http.close()
                await self._http.aclose()
                await self.store.close()
                raise
        if self._agents is not None or any(t.protocol == "a2a" for t in channels.targets()):
            # Imported only when an A2A agent is configured: the A2A SDK is about a quarter of
            # the service's imports, and imports are most of its start-up time.
            from orchestrator.agent.a2a import A2AClient

            self._a2a = A2AClient(
                first_event_timeout=settings.agent_first_event_timeout,
                idle_timeout=settings.agent_idle_timeout,
                connect_timeout=settings.agent_connect_timeout,
                max_runs=settings.max_concurrent_runs,
            )
        self.engine = Engine(
            store=self.store,
            machine=machine,
            agent_client=AgentClient(
                self._http,
                first_event_timeout=settings.agent_first_event_timeout,
                idle_timeout=settings.agent_idle_timeout,
                retry_after_max=settings.agent_retry_after_max,
            ),
            slack=client,
            agents=self._agents or channels.agent,
            settings=settings,
            policies=channels.policy,
            publishers=self._publishers,
            protocols={**({"a2a": self._a2a} if self._a2a else {}), **(self._protocols or {})},
        )
        secret = settings.slack_signing_secret
        self.app = build_app(self.engine, client, secret.get_secret_value() if secret else None)
        # Each tick renews the leases of the runs here: at least three renewals per lease, so
        # one slow tick does not let a healthy run's lease lapse.
        interval = min(settings.scheduler_interval, settings.run_lease / 3)
        self.scheduler = Scheduler(self.engine, interval=interval)
        if recover:
            await self.engine.recover()
        self.recovered = recover  # else `recover()` is to run (serving: once the port is open)
        self.scheduler.start()

    async def recover(self) -> None:
        """What the previous process left half done is finished (see `Recovery`); logs
        `recovery finished` with its duration and the SQL statements the process ran meanwhile
        (recovery's and whatever else ran at the same time)."""
        began, statements = time.perf_counter(), self.store.statements
        try:
            waiting = await self.engine.recover()
        except Exception:  # the scheduler's ticks take over what is left
            log.exception("recovery at start-up failed")
            return
        finally:
            self.recovered = True
        log.info(
            "recovery finished",
            extra={
                "seconds": round(time.perf_counter() - began, 3),
                "statements": self.store.statements - statements,
                "waiting": waiting,
            },
        )

    async def stop(self) -> None:
        await self.engine.finish_runs(self.settings.shutdown_grace)  # leases still renewed
        await self.scheduler.stop()
        await self.engine.close()
        if self._http is not None:
            await self._http.aclose()
        if self._a2a is not None:
            await self._a2a.aclose()
        if self._slack_http is not None:  # after the engine: its last Slack calls are made
            await self._slack_http.close()
        await self.store.close()

    def asgi(self) -> Starlette:
        """`/slack/events` (events and interactivity), `/healthz`, `/readyz`, `/metrics`."""
        handler = AsyncSlackRequestHandler(self.app)
        refusals = RefusedRequests()
        secret = self.settings.slack_signing_secret
        signing_secret = secret.get_secret_value() if secret else None

        async def events(request: Request) -> Response:
            response = await _refusal(request, signing_secret)
            refused = response is not None
            if response is None:
                # Slack waits for the answer: its writes go first, and the runs that deliveries
                # start wait until the deliveries are answered (orchestrator/answering.py).
                with urgent(), answering():
                    response = await handler.handle(request)
                if response.status_code == 200:
                    response.background = BackgroundTask(kill_points.reached, "after_ack")
            if refused or response.status_code in REFUSED:  # logged, rate-limited, no body
                client = request.client.host if request.client else None
                refusals.refused(response.status_code, request.url.path, client)
            return response

        return Starlette(
            routes=[
                Route("/slack/events", events, methods=["POST"]),
                *self.admin_routes(),
            ]
        )

    def admin_routes(self) -> list[Route]:
        async def healthz(_request: Request) -> Response:  # the process serves: nothing more
            return PlainTextResponse("ok")

        async def readyz(_request: Request) -> Response:
            # Ready as soon as the database answers: deliveries are safe to take while
            # recovery goes on (the body says so), and a replica that is not ready gets none.
            try:
                await asyncio.wait_for(self.store.ping(), timeout=2)
            except Exception as exc:  # any failure means not ready; say which
                return PlainTextResponse(
                    f"database not ready: {type(exc).__name__}", status_code=503
                )
            return PlainTextResponse("ready" if self.recovered else "ready, recovering")

        async def metrics(_request: Request) -> Response:
            return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

        return [
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
        ]

    def admin_asgi(self) -> Starlette:
        return Starlette(routes=self.admin_routes())
