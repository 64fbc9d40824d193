"""The agent each thread talks to, and the agent-side task its current run follows."""

from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.models import AgentTask
from persistence.sessions import Also, StorePart, row_by_key, upsert


def keep_agent_op(thread_id: str, agent: str) -> Also:
    """Remember the agent that answered the thread, unless one already did, in the transaction
    of a state change (the run's `run_started`)."""

    async def write(s: AsyncSession) -> None:
        key, unset = {"thread_id": thread_id}, AgentTask.__table__.c.agent.is_(None)
        await s.execute(upsert(s, AgentTask, key, unset, agent=agent, updated_at=time.time()))

    return write


class AgentTasksPart(StorePart):
    async def agent_task(self, thread_id: str) -> AgentTask | None:
        async with self._session() as s:
            return await row_by_key(s, AgentTask, thread_id)

    async def keep_agent(self, thread_id: str, agent: str) -> None:
        """Remembers the agent that answered the thread, unless one already did."""
        async with self._writing.begin() as s:
            await keep_agent_op(thread_id, agent)(s)

    async def set_open_task(self, thread_id: str, task_id: str | None) -> None:
        """The task the thread's streaming run follows (None once the run is over)."""
        async with self._writing.begin() as s:
            key = {"thread_id": thread_id}
            await s.execute(upsert(s, AgentTask, key, task_id=task_id, updated_at=time.time()))

    async def open_tasks(self) -> dict[str, str]:
        """thread id -> open task id, for every thread with one."""
        query = select(AgentTask.thread_id, AgentTask.task_id).where(AgentTask.task_id.is_not(None))
        async with self._session() as s:
            return {thread_id: task_id for thread_id, task_id in (await s.execute(query)).all()}
