"""Service settings, read from the environment (and `.env`) with pydantic-settings."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from persistence.database_url import check_database_url


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class StartError(RuntimeError):
    """The service cannot start as configured; the message says what to fix."""


class Settings(BaseSettings):
    """Everything the service reads from its environment. Secrets are `SecretStr`."""

    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", populate_by_name=True, hide_input_in_errors=True
    )

    slack_bot_token: SecretStr | None = Field(None, validation_alias=_env("SLACK_BOT_TOKEN"))
    slack_app_token: SecretStr | None = Field(None, validation_alias=_env("SLACK_APP_TOKEN"))
    slack_signing_secret: SecretStr | None = Field(
        None, validation_alias=_env("SLACK_SIGNING_SECRET")
    )
    slack_api_url: str = Field("https://slack.com/api/", validation_alias=_env("SLACK_API_URL"))

    agent_url: str = Field("http://127.0.0.1:8000/", validation_alias=_env("AGENT_URL"))
    agent_protocol: Literal["ag-ui", "a2a"] = Field(
        "ag-ui", validation_alias=_env("AGENT_PROTOCOL")
    )
    agent_bearer_token: SecretStr | None = Field(None, validation_alias=_env("AGENT_BEARER_TOKEN"))
    agent_connect_timeout: float = Field(5.0, validation_alias=_env("ORCH_AGENT_CONNECT_TIMEOUT"))
    agent_first_event_timeout: float = Field(
        60.0, validation_alias=_env("ORCH_AGENT_FIRST_EVENT_TIMEOUT")
    )
    agent_idle_timeout: float = Field(300.0, validation_alias=_env("ORCH_AGENT_IDLE_TIMEOUT"))
    agent_retry_after_max: float = Field(5.0, validation_alias=_env("ORCH_AGENT_RETRY_AFTER_MAX"))
    # Runs streaming at once in this process; the agent connection pools are sized from it and
    # further runs wait in line (their live message says so) until one ends.
    max_concurrent_runs: int = Field(1000, ge=1, validation_alias=_env("ORCH_MAX_CONCURRENT_RUNS"))

    config_file: Path | None = Field(None, validation_alias=_env("ORCH_CONFIG"))
    # The inline YAML may carry agent credentials: kept secret like the tokens.
    inline_config: SecretStr | None = Field(
        None, validation_alias=_env("SLACK_INTEGRATION_BOT_CONFIG")
    )
    # None: the machine shipped in the package (orchestrator/config/machine_source.py).
    machine_file: Path | None = Field(None, validation_alias=_env("ORCH_MACHINE"))
    database_url: str = Field(  # may carry a password: kept out of the repr
        "sqlite+aiosqlite:///./orchestrator.db",
        validation_alias=_env("ORCH_DATABASE_URL"),
        repr=False,
    )
    database_busy_timeout: float = Field(30.0, validation_alias=_env("ORCH_DATABASE_BUSY_TIMEOUT"))
    # The connection pool (persistence/schema.py): connections kept open, more opened under
    # load, and how long a call waits for a free one (on SQLite, a write for its turn: the
    # process has one writer) before the message is answered "please send it again".
    database_pool_size: int = Field(5, ge=1, validation_alias=_env("ORCH_DATABASE_POOL_SIZE"))
    database_max_overflow: int = Field(
        10, ge=0, validation_alias=_env("ORCH_DATABASE_MAX_OVERFLOW")
    )
    database_pool_timeout: float = Field(
        30.0, gt=0, validation_alias=_env("ORCH_DATABASE_POOL_TIMEOUT")
    )

    update_interval: float = Field(1.0, validation_alias=_env("ORCH_UPDATE_INTERVAL"))
    slack_streaming: Literal["auto", "native", "update"] = Field(
        "update", validation_alias=_env("ORCH_SLACK_STREAMING")
    )
    slack_sessions: Literal["auto", "on", "off"] = Field(
        "auto", validation_alias=_env("ORCH_SLACK_SESSIONS")
    )
    conversation_key: str = Field(
        "{team_id}:{channel_id}:{thread_ts}", validation_alias=_env("ORCH_CONVERSATION_KEY")
    )
    conversation_namespace: str | None = Field(
        None, validation_alias=_env("ORCH_CONVERSATION_NAMESPACE")
    )
    thread_context_limit: int = Field(50, ge=0, validation_alias=_env("ORCH_THREAD_CONTEXT_LIMIT"))
    approval_timeout: float | None = Field(None, validation_alias=_env("ORCH_APPROVAL_TIMEOUT"))
    approval_reminder: float | None = Field(None, validation_alias=_env("ORCH_APPROVAL_REMINDER"))
    run_lease: float = Field(30.0, gt=0, validation_alias=_env("ORCH_RUN_LEASE"))
    shutdown_grace: float = Field(20.0, ge=0, validation_alias=_env("ORCH_SHUTDOWN_GRACE"))
    max_bot_runs: int = Field(5, ge=1, validation_alias=_env("ORCH_MAX_BOT_RUNS"))
    feedback_url: str | None = Field(None, validation_alias=_env("ORCH_FEEDBACK_URL"))
    scheduler_interval: float = Field(5.0, validation_alias=_env("ORCH_SCHEDULER_INTERVAL"))
    log_level: str = Field("INFO", validation_alias=_env("ORCH_LOG_LEVEL"))
    log_format: Literal["text", "json"] = Field("text", validation_alias=_env("ORCH_LOG_FORMAT"))

    @field_validator("database_url")
    @classmethod
    def _async_database(cls, url: str) -> str:
        check_database_url(url)  # names the async driver to use instead
        return url
