"""The lines `orchestrator run` logs as it starts and stops: which release, in which mode, on
which database (without its password), with which machine, channels and agents."""

from __future__ import annotations

import logging
import time

from sqlalchemy.engine import make_url

from orchestrator.config.machine_source import machine_label
from orchestrator.service.runtime import Runtime

log = logging.getLogger("orchestrator.service")


def mode_of(*, http: bool, host: str, port: int) -> str:
    if http:
        return f"HTTP, Slack's requests at http://{host}:{port}/slack/events"
    return f"Socket Mode, health and metrics at http://{host}:{port}"


def log_started(runtime: Runtime, *, version: str, mode: str) -> float:
    """Logs the start line; returns the moment, for the stop line."""
    settings = runtime.settings
    config = runtime.channels.config
    agents = sorted({target.name for target in runtime.channels.targets()})
    log.info(
        "started",
        extra={
            "version": version,
            "mode": mode,
            "database": make_url(settings.database_url).render_as_string(hide_password=True),
            "machine": machine_label(settings.machine_file),
            "config": str(settings.config_file or "")
            or ("SLACK_INTEGRATION_BOT_CONFIG" if settings.inline_config else "none"),
            "channels": len(config.channels),
            "agents": ", ".join(agents),
        },
    )
    return time.monotonic()


def log_stopped(*, version: str, since: float | None) -> None:
    extra: dict[str, object] = {"version": version}
    if since is not None:
        extra["uptime_s"] = round(time.monotonic() - since, 1)
    log.info("stopped", extra=extra)
