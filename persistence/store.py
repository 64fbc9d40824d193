"""The store API: every read and write the orchestrator makes, behind one small class.

SQLite (WAL, its connections in persistence/sqlite_connection.py) by default; PostgreSQL
(asyncpg) by URL for several replicas. State changes are compare-and-set on
`threads.version`, interrupt answers on `interrupts.status`.
Each table family keeps its methods and its in-transaction writes (`*_op`) in its own module;
`Store` puts them together.
"""

from __future__ import annotations

from sqlalchemy import event, select

from persistence.agent_tasks import AgentTasksPart, keep_agent_op
from persistence.answers import AnswersPart, answer_op, regenerate_op
from persistence.errors import (
    AlreadyClaimed,
    AnswerTaken,
    DatabaseFailure,
    LeaseLost,
    StaleThread,
    StoreError,
)
from persistence.escalations import EscalationsPart
from persistence.feedback import FeedbackPart
from persistence.inbound import InboundPart, claim_op
from persistence.interrupts import RELEASED, InterruptsPart, interrupts_op, release_op
from persistence.leases import LeasesPart, fence_op, lease_op
from persistence.messages import MessagesPart, append_op, replace_op
from persistence.queue import QueuePart, dequeue_op, enqueue_op, queue_head_op
from persistence.recovery_reads import LeftClaim, RecoveryReadsPart, StreamingRun
from persistence.schema import Engines, PoolLimits, open_engines
from persistence.sessions import Also
from persistence.threads import ThreadsPart

__all__ = [
    "RELEASED",
    "AlreadyClaimed",
    "Also",
    "AnswerTaken",
    "DatabaseFailure",
    "LeaseLost",
    "LeftClaim",
    "PoolLimits",
    "StaleThread",
    "Store",
    "StoreError",
    "StreamingRun",
    "answer_op",
    "append_op",
    "claim_op",
    "dequeue_op",
    "enqueue_op",
    "fence_op",
    "interrupts_op",
    "keep_agent_op",
    "lease_op",
    "queue_head_op",
    "regenerate_op",
    "release_op",
    "replace_op",
]


class Store(
    ThreadsPart,
    InboundPart,
    MessagesPart,
    QueuePart,
    LeasesPart,
    InterruptsPart,
    AnswersPart,
    FeedbackPart,
    EscalationsPart,
    AgentTasksPart,
    RecoveryReadsPart,
):
    @classmethod
    async def open(
        cls,
        url: str,
        *,
        busy_timeout: float = 30.0,
        check_writable: bool = True,
        create: bool = True,
        upgrade: bool = False,
        pool: PoolLimits | None = None,
    ) -> Store:
        """Connect to a database at this release's schema (persistence/schema.py).

        `busy_timeout` is how long (seconds) a write waits for another process's lock.
        With `check_writable` the schema version row is written at start-up, so a read-only
        database is refused here rather than on the first message; a process that only reads
        (the `threads` commands) skips it, so it never waits for a busy service's write lock,
        and passes `create=False`, so it never creates a database. `upgrade` brings an older
        schema up to date instead of refusing it. `pool` sizes the connection pool and says how
        long a call waits for a connection (on SQLite, a write for its turn) before failing.
        """
        engines = await open_engines(
            url,
            busy_timeout=busy_timeout,
            check_writable=check_writable,
            create=create,
            upgrade=upgrade,
            pool=pool,
        )
        store = cls(engines.read, engines.write, engines.write_slots)
        # Statements run, for the `recovery finished` line and the benchmarks: one listener,
        # SQLAlchemy's own hook, costs an increment per statement.
        for engine in {engines.read, engines.write}:
            event.listen(engine.sync_engine, "before_cursor_execute", store._count)
        return store

    statements = 0

    def _count(self, *_args: object) -> None:
        self.statements += 1

    async def close(self) -> None:
        await Engines(self.engine, self.write_engine).dispose()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.scalar(select(1))
