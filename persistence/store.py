"""The store API: every read and write the orchestrator makes, behind one small class.

SQLite (aiosqlite, WAL) by default; PostgreSQL (asyncpg) by URL for several replicas. State
changes are compare-and-set on `threads.version`, interrupt answers on `interrupts.status`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, delete, event, func, insert, inspect, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import flag_modified

from persistence.models import (
    SCHEMA_VERSION,
    Answer,
    Base,
    ConversationMessage,
    Escalation,
    Feedback,
    InboundEvent,
    Interrupt,
    Meta,
    QueuedMessage,
    RunLease,
    Thread,
    Transition,
)

_SCHEMA_LOCK = 0x6F726368  # "orch": the advisory lock held while the schema is checked or made

# Queued messages run in the order they were written in Slack (ts has a fixed width), whatever
# order their deliveries were handled in.
_QUEUE_ORDER = (QueuedMessage.ts, QueuedMessage.id)

# Extra writes that must commit in the same transaction as a state change.
Also = Callable[[AsyncSession], Awaitable[None]]


class StoreError(RuntimeError):
    """The database cannot be used; the message says why and what to do."""


# What a store call raises when the database refuses work: locked, full, read-only or gone.
DatabaseFailure = OperationalError


class StaleThread(RuntimeError):
    """The thread changed since it was read (another replica or task won the race)."""


class AlreadyClaimed(RuntimeError):
    """This Slack delivery was taken before (a retry, or the same message's other event)."""


class Store:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._session = async_sessionmaker(engine, expire_on_commit=False)

    # --- lifecycle ---------------------------------------------------------------------

    @classmethod
    async def open(
        cls, url: str, *, busy_timeout: float = 30.0, check_writable: bool = True
    ) -> Store:
        """Connect, create the schema when new, refuse a schema from another version.

        `busy_timeout` is how long (seconds) a write waits for another connection's lock.
        With `check_writable` the schema version row is written at start-up, so a read-only
        database is refused here rather than on the first message; a process that only reads
        (the `threads` commands) skips it, so it never waits for a busy service's write lock.
        """
        engine = create_async_engine(url, **_engine_options(url, busy_timeout))
        if engine.dialect.name == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas(busy_timeout))
        store = cls(engine)
        try:
            await store._prepare(_safe_url(url), check_writable=check_writable)
        except OperationalError as exc:
            await engine.dispose()
            raise StoreError(
                f"cannot open the database {_safe_url(url)}: {exc.orig}{_hint(exc)}"
            ) from exc
        except StoreError:
            await engine.dispose()
            raise
        return store

    async def _prepare(self, where: str, *, check_writable: bool) -> None:
        async with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Replicas starting together on an empty database take turns creating it.
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK}
                )
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
            found = None
            if Meta.__tablename__ in tables:
                found = await conn.scalar(select(Meta.value).where(Meta.key == "schema_version"))
            _check_schema(where, found, tables & set(Base.metadata.tables))
            await conn.run_sync(Base.metadata.create_all)
            if found is None:
                await conn.execute(
                    insert(Meta).values(key="schema_version", value=str(SCHEMA_VERSION))
                )
            elif check_writable:
                await conn.execute(
                    update(Meta).where(Meta.key == "schema_version").values(value=found)
                )

    async def close(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.scalar(select(1))

    # --- threads -----------------------------------------------------------------------

    async def get_thread(self, thread_id: str) -> Thread | None:
        async with self._session() as s:
            return await s.get(Thread, thread_id)

    def new_thread(
        self, thread_id: str, *, team_id: str, channel_id: str, thread_ts: str, state: str
    ) -> Thread:
        """A thread row that is not stored yet: its first `transition` inserts it."""
        now = time.time()
        return Thread(
            id=thread_id,
            team_id=team_id,
            channel_id=channel_id,
            thread_ts=thread_ts,
            state=state,
            version=0,
            message_ts=[],
            created_at=now,
            updated_at=now,
        )

    async def transition(
        self,
        thread: Thread,
        *,
        to_state: str,
        trigger: str,
        actor: str | None = None,
        detail: dict[str, Any] | None = None,
        also: Sequence[Also] = (),
        **fields: Any,
    ) -> Thread:
        """Move `thread` to `to_state` if nobody changed it since it was read; log the trigger.

        A thread from `new_thread` is inserted in the same transaction (StaleThread if another
        task or replica created it first). `also` are writes (queue, history) that must land
        with the state change or not at all.
        """
        now = time.time()
        values = {**fields, "state": to_state, "version": thread.version + 1, "updated_at": now}
        from_state, created = thread.state, inspect(thread).transient
        async with self._session.begin() as s:
            if created:
                await _insert_thread(s, thread, values)
            else:
                await _update_thread(s, thread, values)
            await s.execute(
                insert(Transition).values(
                    thread_id=thread.id,
                    from_state=from_state,
                    to_state=to_state,
                    trigger=trigger,
                    actor=actor,
                    detail=detail or {},
                    at=now,
                )
            )
            for write in also:
                await write(s)
        if created:
            make_transient_to_detached(thread)  # stored now: the next transition updates it
        for key, value in values.items():
            setattr(thread, key, value)
        return thread

    async def update_thread(self, thread_id: str, **fields: Any) -> None:
        """Write fields that are not the machine's state (message ts, run id)."""
        async with self._session.begin() as s:
            await s.execute(
                update(Thread)
                .where(Thread.id == thread_id)
                .values(**fields, updated_at=time.time())
            )

    async def record(
        self, thread: Thread, trigger: str, actor: str | None, detail: dict[str, Any] | None = None
    ) -> None:
        """A history entry that changes nothing (e.g. a refused click)."""
        async with self._session.begin() as s:
            s.add(
                Transition(
                    thread_id=thread.id,
                    from_state=thread.state,
                    to_state=thread.state,
                    trigger=trigger,
                    actor=actor,
                    detail=detail or {},
                    at=time.time(),
                )
            )

    async def list_threads(self, state: str | None = None, limit: int = 500) -> list[Thread]:
        query = select(Thread).order_by(Thread.updated_at.desc()).limit(limit)
        if state:
            query = query.where(Thread.state == state)
        async with self._session() as s:
            return list((await s.scalars(query)).all())

    async def threads_starting_with(self, prefix: str, limit: int = 2) -> list[Thread]:
        """Threads whose id starts with `prefix` (at most `limit`)."""
        query = select(Thread).where(Thread.id.startswith(prefix, autoescape=True)).limit(limit)
        async with self._session() as s:
            return list((await s.scalars(query)).all())

    async def threads_in(self, state: str) -> list[Thread]:
        async with self._session() as s:
            return list((await s.scalars(select(Thread).where(Thread.state == state))).all())

    async def history(self, thread_id: str) -> list[Transition]:
        query = select(Transition).where(Transition.thread_id == thread_id).order_by(Transition.id)
        async with self._session() as s:
            return list((await s.scalars(query)).all())

    # --- inbound dedupe ----------------------------------------------------------------

    async def claim_inbound(self, keys: Iterable[str]) -> bool:
        """True for the first delivery carrying any of `keys`; False for a repeat."""
        try:
            async with self._session.begin() as s:
                await claim_op(keys)(s)
        except AlreadyClaimed:
            return False
        return True

    async def prune_inbound(self, older_than: float) -> int:
        async with self._session.begin() as s:
            result = await s.execute(delete(InboundEvent).where(InboundEvent.at < older_than))
            return result.rowcount or 0

    # --- conversation history ----------------------------------------------------------

    async def messages(self, thread_id: str) -> list[dict[str, Any]]:
        query = (
            select(ConversationMessage.message)
            .where(ConversationMessage.thread_id == thread_id)
            .order_by(ConversationMessage.seq)
        )
        async with self._session() as s:
            return list((await s.scalars(query)).all())

    async def unsent_messages(self, thread_id: str) -> list[dict[str, Any]]:
        query = (
            select(ConversationMessage.message)
            .where(ConversationMessage.thread_id == thread_id, ConversationMessage.sent.is_(False))
            .order_by(ConversationMessage.seq)
        )
        async with self._session() as s:
            return list((await s.scalars(query)).all())

    async def append_messages(
        self, thread_id: str, messages: Sequence[dict[str, Any]], *, sent: bool = False
    ) -> None:
        async with self._session.begin() as s:
            await append_op(thread_id, messages, sent=sent)(s)

    async def replace_messages(self, thread_id: str, messages: Sequence[dict[str, Any]]) -> None:
        """Take the server's MESSAGES_SNAPSHOT as the history."""
        async with self._session.begin() as s:
            await replace_op(thread_id, messages)(s)

    async def mark_messages_sent(self, thread_id: str) -> None:
        async with self._session.begin() as s:
            await s.execute(
                update(ConversationMessage)
                .where(ConversationMessage.thread_id == thread_id)
                .values(sent=True)
            )

    # --- queued messages -------------------------------------------------------------

    async def queued(self, thread_id: str) -> list[QueuedMessage]:
        query = (
            select(QueuedMessage)
            .where(QueuedMessage.thread_id == thread_id)
            .order_by(*_QUEUE_ORDER)
        )
        async with self._session() as s:
            return list((await s.scalars(query)).all())

    # --- run leases ------------------------------------------------------------------

    async def renew_leases(self, owner: str, expires_at: float) -> None:
        async with self._session.begin() as s:
            await s.execute(
                update(RunLease).where(RunLease.owner == owner).values(expires_at=expires_at)
            )

    async def streaming_leases(self) -> list[tuple[Thread, RunLease | None]]:
        """Every thread in `streaming`, with the lease of its run (None if it has none)."""
        query = (
            select(Thread, RunLease)
            .outerjoin(RunLease, RunLease.thread_id == Thread.id)
            .where(Thread.state == "streaming")
        )
        async with self._session() as s:
            return [(thread, lease) for thread, lease in (await s.execute(query)).all()]

    async def threads_with_queue(self) -> list[str]:
        async with self._session() as s:
            return list((await s.scalars(select(QueuedMessage.thread_id).distinct())).all())

    # --- interrupts --------------------------------------------------------------------

    async def add_interrupts(self, rows: Sequence[Interrupt]) -> None:
        async with self._session.begin() as s:
            s.add_all(rows)

    async def get_interrupt(self, interrupt_key: str) -> Interrupt | None:
        async with self._session() as s:
            return await s.get(Interrupt, interrupt_key)

    async def interrupts_of(self, thread_id: str, run_id: str | None = None) -> list[Interrupt]:
        query = select(Interrupt).where(Interrupt.thread_id == thread_id)
        if run_id is not None:
            query = query.where(Interrupt.run_id == run_id)
        async with self._session() as s:
            return list((await s.scalars(query.order_by(Interrupt.created_at))).all())

    async def set_interrupt(self, interrupt_key: str, **fields: Any) -> None:
        async with self._session.begin() as s:
            await s.execute(update(Interrupt).where(Interrupt.id == interrupt_key).values(**fields))

    async def cas_interrupt(
        self, interrupt_key: str, expected: str | Sequence[str], **fields: Any
    ) -> bool:
        """Compare-and-set on the interrupt's status: True only for the one caller that wins."""
        expected = (expected,) if isinstance(expected, str) else tuple(expected)
        async with self._session.begin() as s:
            result = await s.execute(
                update(Interrupt)
                .where(Interrupt.id == interrupt_key, Interrupt.status.in_(expected))
                .values(**fields)
            )
            return result.rowcount == 1

    async def stale_claims(self, answered_before: float) -> list[Interrupt]:
        """Answers claimed long ago and never sent: their process died in between."""
        query = select(Interrupt).where(
            Interrupt.status == "claimed", Interrupt.answered_at < answered_before
        )
        async with self._session() as s:
            return list((await s.scalars(query)).all())

    async def due_interrupts(self, now: float) -> list[Interrupt]:
        query = select(Interrupt).where(
            Interrupt.status == "pending",
            Interrupt.expires_at.is_not(None),
            Interrupt.expires_at <= now,
        )
        async with self._session() as s:
            return list((await s.scalars(query)).all())

    async def due_reminders(self, now: float) -> list[Interrupt]:
        query = select(Interrupt).where(
            Interrupt.status == "pending",
            Interrupt.remind_at.is_not(None),
            Interrupt.remind_at <= now,
        )
        async with self._session() as s:
            return list((await s.scalars(query)).all())

    # --- answers, feedback, escalations ----------------------------------------------------

    async def get_answer(self, run_id: str) -> Answer | None:
        async with self._session() as s:
            return await s.get(Answer, run_id)

    async def set_answer(self, run_id: str, **fields: Any) -> None:
        async with self._session.begin() as s:
            await s.execute(update(Answer).where(Answer.run_id == run_id).values(**fields))

    async def save_feedback(
        self,
        *,
        thread_id: str,
        run_id: str,
        user: str,
        rating: str,
        details: tuple[list[str], str | None] | None = None,
        forward: bool,
    ) -> Feedback:
        """Store `user`'s rating of the answer of `run_id`, replacing their earlier one.

        `details` (reasons, comment) replace the stored ones; without them a changed rating
        clears them and an unchanged one keeps them. `forward` marks the record due for sending.
        """
        now = time.time()
        forwarding: dict[str, Any] = (
            {"forward_state": "pending", "forward_due": now, "forward_attempts": 0}
            if forward
            else {}
        )
        for _ in range(2):
            try:
                async with self._session.begin() as s:
                    row = await s.scalar(
                        select(Feedback).where(Feedback.run_id == run_id, Feedback.user == user)
                    )
                    if row is None:
                        row = Feedback(
                            thread_id=thread_id,
                            run_id=run_id,
                            user=user,
                            rating=rating,
                            reasons=[],
                            created_at=now,
                            forward_attempts=0,
                        )
                        s.add(row)
                    elif row.rating != rating and details is None:
                        row.reasons, row.comment = [], None
                    row.rating, row.updated_at = rating, now
                    if details is not None:
                        row.reasons, row.comment = list(details[0]), details[1]
                    for key, value in forwarding.items():
                        setattr(row, key, value)
                        # Written even when it reads unchanged: a send finishing meanwhile
                        # may have marked the record sent, and this change must go out too.
                        flag_modified(row, key)
            except IntegrityError:  # the same person's first click, twice at once
                continue
            return row
        raise StaleThread(thread_id)

    async def get_feedback(self, feedback_id: int) -> Feedback | None:
        async with self._session() as s:
            return await s.get(Feedback, feedback_id)

    async def feedback_of(self, thread_id: str) -> list[Feedback]:
        query = select(Feedback).where(Feedback.thread_id == thread_id).order_by(Feedback.id)
        async with self._session() as s:
            return list((await s.scalars(query)).all())

    async def feedback_counts(self, run_id: str) -> dict[str, int]:
        query = (
            select(Feedback.rating, func.count())
            .where(Feedback.run_id == run_id)
            .group_by(Feedback.rating)
        )
        async with self._session() as s:
            return {rating: count for rating, count in (await s.execute(query)).all()}

    async def due_forwards(self, now: float) -> list[Feedback]:
        query = select(Feedback).where(
            Feedback.forward_state == "pending", Feedback.forward_due <= now
        )
        async with self._session() as s:
            return list((await s.scalars(query.order_by(Feedback.forward_due))).all())

    async def claim_forward(self, feedback_id: int, due: float, lease_until: float) -> bool:
        """Take a pending forward for sending; False when another task or replica has it."""
        async with self._session.begin() as s:
            result = await s.execute(
                update(Feedback)
                .where(
                    Feedback.id == feedback_id,
                    Feedback.forward_state == "pending",
                    Feedback.forward_due == due,
                )
                .values(forward_due=lease_until)
            )
            return result.rowcount == 1

    async def settle_forward(self, feedback_id: int, updated_at: float, **fields: Any) -> bool:
        """Record a forwarding outcome unless the feedback changed meanwhile (it is due again)."""
        async with self._session.begin() as s:
            result = await s.execute(
                update(Feedback)
                .where(Feedback.id == feedback_id, Feedback.updated_at == updated_at)
                .values(**fields)
            )
            return result.rowcount == 1

    async def add_escalation(
        self, thread_id: str, user: str, targets: Sequence[str], run_id: str | None
    ) -> Escalation | None:
        """Record the thread's escalation; None when someone escalated it already."""
        row = Escalation(
            thread_id=thread_id, user=user, targets=list(targets), run_id=run_id, at=time.time()
        )
        try:
            async with self._session.begin() as s:
                s.add(row)
        except IntegrityError:
            return None
        return row

    async def get_escalation(self, thread_id: str) -> Escalation | None:
        async with self._session() as s:
            return await s.get(Escalation, thread_id)

    async def remove_escalation(self, thread_id: str, user: str) -> None:
        async with self._session.begin() as s:
            await s.execute(
                delete(Escalation).where(Escalation.thread_id == thread_id, Escalation.user == user)
            )


class AnswerTaken(RuntimeError):
    """The answer was regenerated already, or a newer run replaced it."""


def answer_op(row: Answer) -> Also:
    """Record a finished answer (with the state change that finishes its run)."""

    async def write(s: AsyncSession) -> None:
        s.add(row)

    return write


def regenerate_op(thread_id: str, run_id: str, user: str) -> Also:
    """Claim the answer of `run_id` for regeneration and rewind the history to its input.

    Runs inside the thread's versioned update, so of two clicks exactly one gets here with the
    answer still current; the other raises AnswerTaken and its transaction rolls back.
    """

    async def write(s: AsyncSession) -> None:
        current = await s.scalar(select(Thread.run_id).where(Thread.id == thread_id))
        claimed = await s.execute(
            update(Answer)
            .where(Answer.run_id == run_id, Answer.status == "current")
            .values(status="regenerated", regenerated_by=user, regenerated_at=time.time())
        )
        if current != run_id or claimed.rowcount != 1:
            raise AnswerTaken(run_id)
        rows = (
            await s.execute(
                select(ConversationMessage.seq, ConversationMessage.message)
                .where(ConversationMessage.thread_id == thread_id)
                .order_by(ConversationMessage.seq)
            )
        ).all()
        asked = [seq for seq, message in rows if message.get("role") == "user"]
        if not asked:
            raise AnswerTaken(run_id)
        await s.execute(
            delete(ConversationMessage).where(
                ConversationMessage.thread_id == thread_id, ConversationMessage.seq > asked[-1]
            )
        )
        # A backend that keeps its own history is sent the question again.
        await s.execute(
            update(ConversationMessage)
            .where(ConversationMessage.thread_id == thread_id, ConversationMessage.seq == asked[-1])
            .values(sent=False)
        )

    return write


# One statement per appended message: its `seq` follows the thread's last one. A constant
# statement, so it is compiled once.
_APPEND = insert(ConversationMessage).values(
    thread_id=bindparam("thread"),
    seq=select(func.coalesce(func.max(ConversationMessage.seq), 0))
    .where(ConversationMessage.thread_id == bindparam("thread"))
    .scalar_subquery()
    + bindparam("offset"),
    message=bindparam("message"),
    sent=bindparam("sent"),
)


def append_op(thread_id: str, messages: Sequence[dict[str, Any]], *, sent: bool = False) -> Also:
    """Append to the thread's AG-UI history (as part of a larger transaction).

    The rows number themselves after the thread's last `seq`, each above the one before it
    whether the driver runs them one by one (numbers may then skip) or as one batch.
    """

    async def write(s: AsyncSession) -> None:
        if not messages:
            return
        rows = [
            {"thread": thread_id, "offset": offset, "message": message, "sent": sent}
            for offset, message in enumerate(messages, start=1)
        ]
        await s.execute(_APPEND, rows)

    return write


def replace_op(thread_id: str, messages: Sequence[dict[str, Any]]) -> Also:
    """Replace the thread's history with the server's MESSAGES_SNAPSHOT."""

    async def write(s: AsyncSession) -> None:
        await s.execute(
            delete(ConversationMessage).where(ConversationMessage.thread_id == thread_id)
        )
        s.add_all(
            ConversationMessage(thread_id=thread_id, seq=i + 1, message=m, sent=True)
            for i, m in enumerate(messages)
        )

    return write


def lease_op(thread_id: str, owner: str | None, expires_at: float = 0.0) -> Also:
    """Take the thread's run lease for `owner`, or drop it (owner None)."""

    async def write(s: AsyncSession) -> None:
        if owner is None:
            await s.execute(delete(RunLease).where(RunLease.thread_id == thread_id))
            return
        await s.execute(
            _upsert(s, RunLease, {"thread_id": thread_id}, owner=owner, expires_at=expires_at)
        )

    return write


def enqueue_op(row: QueuedMessage, *, limit: int, full: Callable[[], None]) -> Also:
    """Queue `row` behind the thread's run, unless `limit` messages wait already (then `full`)."""

    async def write(s: AsyncSession) -> None:
        waiting = await s.scalar(
            select(func.count()).where(QueuedMessage.thread_id == row.thread_id)
        )
        if (waiting or 0) >= limit:
            full()
            return
        s.add(row)

    return write


def claim_op(keys: Iterable[str]) -> Also:
    """Mark a Slack delivery as taken, with the write that takes it; AlreadyClaimed (and so no
    write at all) for a delivery taken before."""
    now = time.time()
    rows = [{"key": key[:255], "at": now} for key in dict.fromkeys(keys)]

    async def write(s: AsyncSession) -> None:
        if not rows:
            return
        try:
            await s.execute(insert(InboundEvent), rows)
        except IntegrityError:
            raise AlreadyClaimed(rows[0]["key"]) from None

    return write


def queue_head_op(thread_id: str, into: list[QueuedMessage]) -> Also:
    """Put the thread's oldest queued message (if any) in `into`, read with the state change
    that lets it run."""

    async def write(s: AsyncSession) -> None:
        into.clear()
        head = await s.scalar(
            select(QueuedMessage)
            .where(QueuedMessage.thread_id == thread_id)
            .order_by(*_QUEUE_ORDER)
            .limit(1)
        )
        if head is not None:
            into.append(head)

    return write


def dequeue_op(queued_id: int) -> Also:
    async def write(s: AsyncSession) -> None:
        await s.execute(delete(QueuedMessage).where(QueuedMessage.id == queued_id))

    return write


async def _insert_thread(s: AsyncSession, thread: Thread, values: dict[str, Any]) -> None:
    try:
        await s.execute(insert(Thread).values(**{**_columns(thread), **values}))
    except IntegrityError:  # created at the same moment by another task or replica
        raise StaleThread(thread.id) from None


async def _update_thread(s: AsyncSession, thread: Thread, values: dict[str, Any]) -> None:
    result = await s.execute(
        update(Thread)
        .where(Thread.id == thread.id, Thread.version == thread.version)
        .values(**values)
    )
    if result.rowcount != 1:
        raise StaleThread(thread.id)


def _columns(row: Base) -> dict[str, Any]:
    """The column values set on `row` (the columns left unset get their defaults)."""
    keys = {c.key for c in inspect(type(row)).column_attrs}
    return {key: value for key, value in inspect(row).dict.items() if key in keys}


def _check_schema(where: str, found: str | None, ours: set[str]) -> None:
    """Refuses a database written by another release (or by one that predates the version row)."""
    upgrade = (
        "Back it up, then start the release that wrote it, or point ORCH_DATABASE_URL at a new "
        "database."
    )
    if found is None:
        if ours - {Meta.__tablename__}:
            raise StoreError(
                f"the database {where} has orchestrator tables but no schema version: it was "
                f"written by an older release. {upgrade}"
            )
        return
    if found.strip() != str(SCHEMA_VERSION):
        raise StoreError(
            f"the database {where} has schema version {found!r}, this release needs "
            f"{SCHEMA_VERSION}. {upgrade}"
        )


def _hint(exc: OperationalError) -> str:
    said = str(exc.orig).lower()
    if "readonly" in said or "read-only" in said:
        return " (the service needs write access to the file and to its directory)"
    if "locked" in said:
        return " (another process holds a write lock on it; stop it or wait)"
    if "full" in said:
        return " (the disk is full; free some space)"
    return ""


def _engine_options(url: str, busy_timeout: float) -> dict[str, Any]:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return {"pool_pre_ping": True}
    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return {"connect_args": {"timeout": busy_timeout}}


def _sqlite_pragmas(busy_timeout: float) -> Callable[[Any, Any], None]:
    def apply(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cursor.close()

    return apply


def _safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _upsert(s: AsyncSession, model: type[Base], key: dict[str, Any], **values: Any) -> Any:
    """INSERT … ON CONFLICT (key) DO UPDATE, in the dialect of the session's database."""
    dialect = s.get_bind().dialect.name
    insert_of = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert_of(model).values(**key, **values)
    return statement.on_conflict_do_update(index_elements=list(key), set_=values)
