"""SQLAlchemy 2 models: what a restart must keep.

Times are epoch seconds (float) so SQLite and PostgreSQL compare them the same way.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Meta(Base):
    """One row per setting. `schema_version` is for release 0.1.0, which predates the migrations
    (Alembic's `alembic_version` has the revision): `1` while the schema is 0.1.0's, the revision
    once it is newer, so a 0.1.0 process refuses a database it cannot use."""

    __tablename__ = "orchestrator_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


class Thread(Base):
    """One Slack thread: its machine state and what the current run needs to go on."""

    __tablename__ = "threads"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the conversation id
    team_id: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(32))
    thread_ts: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(32), index=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    agent: Mapped[str | None] = mapped_column(String(255), default=None)
    requester: Mapped[str | None] = mapped_column(String(32), default=None)
    requester_is_bot: Mapped[bool] = mapped_column(default=False)
    run_id: Mapped[str | None] = mapped_column(String(64), default=None)
    # The Slack messages of the current run (the live message first, then continuations).
    message_ts: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Messages the current run showed live and has not closed yet ("Thinking…", the cursor):
    # recovery rewrites them when the run's process died before closing them.
    # The server default is migration 0003's, which added the column to existing rows.
    live_ts: Mapped[list[Any]] = mapped_column(JSON, default=list, server_default="[]")
    # The run whose input went to the agent (None from the transition into `streaming` until
    # the request leaves): a lost run that never reached the agent is started again.
    run_sent: Mapped[str | None] = mapped_column(String(64), default=None)
    # The input of the last run, so Retry can run it again.
    last_input: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    error_kind: Mapped[str | None] = mapped_column(String(64), default=None)
    error_text: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (UniqueConstraint("team_id", "channel_id", "thread_ts"),)


class Transition(Base):
    """The history of a thread: every trigger fired (and refused attempts), by whom, when."""

    __tablename__ = "transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    thread_id: Mapped[str] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"), index=True)
    from_state: Mapped[str] = mapped_column(String(32))
    to_state: Mapped[str] = mapped_column(String(32))
    trigger: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str | None] = mapped_column(String(64), default=None)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[float] = mapped_column(Float)


class ConversationMessage(Base):
    """The thread's AG-UI message history (the client owns the conversation)."""

    __tablename__ = "conversation_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    thread_id: Mapped[str] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    message: Mapped[dict[str, Any]] = mapped_column(JSON)
    sent: Mapped[bool] = mapped_column(default=False)  # already delivered to the backend

    __table_args__ = (UniqueConstraint("thread_id", "seq"),)


class InboundEvent(Base):
    """Keys of Slack deliveries already taken, so retries and replicas don't answer twice."""

    __tablename__ = "inbound_events"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    at: Mapped[float] = mapped_column(Float, index=True)


class Interrupt(Base):
    """A human-in-the-loop request. Written before its form is posted; claimed before resuming."""

    __tablename__ = "interrupts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # ours; buttons carry it
    thread_id: Mapped[str] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"), index=True)
    interrupt_id: Mapped[str] = mapped_column(String(255))  # the backend's id
    run_id: Mapped[str | None] = mapped_column(String(64), default=None)
    wire_form: Mapped[str] = mapped_column(String(16))  # outcome | legacy | tool
    message: Mapped[str] = mapped_column(Text, default="")
    reason: Mapped[str | None] = mapped_column(String(255), default=None)
    tool_call_id: Mapped[str | None] = mapped_column(String(255), default=None)
    tool_name: Mapped[str | None] = mapped_column(String(255), default=None)
    tool_args: Mapped[str | None] = mapped_column(Text, default=None)
    response_schema: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    fields: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    requester: Mapped[str | None] = mapped_column(String(32), default=None)
    approvers: Mapped[list[Any]] = mapped_column(JSON, default=list)
    form_ts: Mapped[str | None] = mapped_column(String(32), default=None)
    # The process that posts the form, and since when (stored before Slack is asked): a form
    # with an intent but no ts is looked for in the thread (by its metadata) before another
    # process posts it, so it is posted once.
    form_intent: Mapped[str | None] = mapped_column(String(255), default=None)
    form_intent_at: Mapped[float | None] = mapped_column(Float, default=None)
    status: Mapped[str] = mapped_column(String(16), index=True, default="pending")
    answered_by: Mapped[str | None] = mapped_column(String(32), default=None)
    answered_at: Mapped[float | None] = mapped_column(Float, default=None)
    answer: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    decision: Mapped[str | None] = mapped_column(String(16), default=None)  # resolved | cancelled
    expires_at: Mapped[float | None] = mapped_column(Float, default=None)
    remind_at: Mapped[float | None] = mapped_column(Float, default=None)
    created_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        Index("ix_interrupts_due", "status", "expires_at"),
        UniqueConstraint("thread_id", "interrupt_id"),
    )


class RunLease(Base):
    """Which process streams a thread's run, and until when it promised to be alive.

    The owner renews it while the run goes on; a run whose lease lapsed (or whose owner is known
    dead) is reconciled by whichever replica notices first.
    """

    __tablename__ = "run_leases"

    thread_id: Mapped[str] = mapped_column(
        ForeignKey("threads.id", ondelete="CASCADE"), primary_key=True
    )
    owner: Mapped[str] = mapped_column(String(255), index=True)
    expires_at: Mapped[float] = mapped_column(Float)


class AgentTask(Base):
    """The agent a thread talks to (the first that answered it), and the agent-side task its
    current run follows, so a restart can re-attach to the task instead of losing it.

    A table of its own, added by migration 0002 (`orchestrator db upgrade`).
    """

    __tablename__ = "agent_tasks"

    thread_id: Mapped[str] = mapped_column(
        ForeignKey("threads.id", ondelete="CASCADE"), primary_key=True
    )
    agent: Mapped[str | None] = mapped_column(String(255), default=None)
    task_id: Mapped[str | None] = mapped_column(String(255), default=None)
    updated_at: Mapped[float] = mapped_column(Float)


class QueuedMessage(Base):
    """A message that arrived while the thread was busy; it runs after the current run."""

    __tablename__ = "queued_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    thread_id: Mapped[str] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"), index=True)
    ts: Mapped[str] = mapped_column(String(32))
    user: Mapped[str] = mapped_column(String(32))
    is_bot: Mapped[bool] = mapped_column(default=False)
    message: Mapped[dict[str, Any]] = mapped_column(JSON)  # the AG-UI user message to send
    created_at: Mapped[float] = mapped_column(Float)


class Answer(Base):
    """A finished answer in Slack: what it showed, where, and whether it was regenerated.

    Its buttons carry only `run_id`; feedback, regeneration and re-rendering start here.
    """

    __tablename__ = "answers"

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    thread_id: Mapped[str] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"), index=True)
    # What the done renderer needs to draw the answer again: text, tool calls, plan steps.
    view: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    message_ts: Mapped[list[Any]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="current")  # current | regenerated
    regenerated_by: Mapped[str | None] = mapped_column(String(32), default=None)
    regenerated_at: Mapped[float | None] = mapped_column(Float, default=None)
    created_at: Mapped[float] = mapped_column(Float)


class Feedback(Base):
    """One person's rating of one answer (a later click replaces it), and its forwarding."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    thread_id: Mapped[str] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"), index=True)
    run_id: Mapped[str] = mapped_column(String(64))
    user: Mapped[str] = mapped_column(String(32))
    rating: Mapped[str] = mapped_column(String(8))  # up | down
    reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    comment: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    # Forwarding to ORCH_FEEDBACK_URL: pending (due at forward_due) | sent | failed | None (off).
    forward_state: Mapped[str | None] = mapped_column(String(16), default=None)
    forward_due: Mapped[float | None] = mapped_column(Float, default=None, index=True)
    forward_attempts: Mapped[int] = mapped_column(Integer, default=0)
    forward_error: Mapped[str | None] = mapped_column(Text, default=None)
    forwarded_at: Mapped[float | None] = mapped_column(Float, default=None)

    __table_args__ = (UniqueConstraint("run_id", "user"),)


class Escalation(Base):
    """Someone asked the channel's people for help in a thread; one per thread."""

    __tablename__ = "escalations"

    thread_id: Mapped[str] = mapped_column(
        ForeignKey("threads.id", ondelete="CASCADE"), primary_key=True
    )
    user: Mapped[str] = mapped_column(String(32))
    targets: Mapped[list[Any]] = mapped_column(JSON, default=list)
    run_id: Mapped[str | None] = mapped_column(String(64), default=None)
    at: Mapped[float] = mapped_column(Float)
