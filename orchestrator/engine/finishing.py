"""Finishing a run: one transition stores how it ended with everything that goes with it (the
history, the answer's record, the interrupts), then its Slack messages are closed.

What finishing does for each way a run ends is the outcome table of `orchestrator.core.outcomes`;
which state follows, and which actions run, is the machine's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator import kill_points, metrics
from orchestrator.agent.targets import AgentTarget
from orchestrator.config.channels import ChannelPolicy
from orchestrator.core import interrupt_records
from orchestrator.core.approvals import Resume
from orchestrator.core.conversation import RunRecorder
from orchestrator.core.outcomes import OUTCOMES, RunResult
from orchestrator.core.reducer import RunReducer
from orchestrator.engine.answer_actions import AnswerActions
from orchestrator.engine.approvals_desk import ApprovalsDesk
from orchestrator.engine.context import Context, LiveAnswer, Render
from orchestrator.engine.firing import Firing
from orchestrator.logs import escape
from orchestrator.slack.publisher import LivePublisher, PublishError
from persistence.models import Interrupt, Thread
from persistence.store import Also, LeaseLost, Store, append_op, release_op, replace_op
from renderers.view import ThreadView

log = logging.getLogger("orchestrator.engine")


class Finisher:
    def __init__(
        self,
        *,
        store: Store,
        firing: Firing,
        desk: ApprovalsDesk,
        answers: AnswerActions,
        render: Render,
        policy: Callable[[str], ChannelPolicy],
    ) -> None:
        self.store = store
        self.firing = firing
        self.desk = desk
        self.answers = answers
        self.render = render
        self.policy = policy

    async def finish(
        self,
        thread: Thread,
        target: AgentTarget,
        view: ThreadView,
        publisher: LivePublisher,
        recorder: RunRecorder,
        result: RunResult,
        resume: Resume | None = None,
    ) -> None:
        outcome = OUTCOMES[result.trigger]
        if outcome.finishes_tools:
            for call in view.tool_calls.values():
                if call.status == "running":
                    call.status = "done"
        also: list[Also] = []
        if outcome.keeps_history:
            sent = target.history == "server"  # the backend keeps what it streamed and was sent
            if resume is not None and resume.tool_messages:
                also.append(append_op(thread.id, resume.tool_messages, sent=sent))
            also.append(_history_write(thread, recorder, sent=sent))
        if outcome.records_answer:
            also.append(self.answers.record(thread, view, publisher.ts))
        refused = result.form_error is not None
        if outcome.releases_answers and resume is not None:
            also.append(release_op(resume.interrupt_keys, refused=refused))
        if outcome.stores_interrupts and result.interrupts:
            also.append(_insert(result.interrupts))
        fields: dict[str, Any] = {"run_id": thread.run_id, "message_ts": list(publisher.ts)}
        if result.trigger == "stop":
            view.stopped_by = result.actor
        if result.error is not None:
            result.error.can_escalate = bool(self.policy(thread.channel_id).escalate_to)
            fields |= {"error_kind": result.error.kind, "error_text": result.error.title}
            view.error = result.error
            if view.text:
                view.interrupted = result.error.title
        live = LiveAnswer(view, publisher, shown_as=outcome.shown_as)
        fired = await self.firing.fire(
            thread.id,
            result.trigger,
            Context(actor=result.actor, live=live, fenced=True),
            detail=result.detail,
            fields=fields,
            also=also,
            expect_state="streaming",
            known=thread,
        )
        if fired is None:  # another process ended the run (it found it lost): its to show
            raise LeaseLost(thread.id)
        metrics.RUNS.labels(result.trigger).inc()
        if result.error is not None:
            log.warning(
                "run failed",
                extra={
                    "conversation": thread.id,
                    "agent": target.name,
                    "kind": result.error.kind,
                    "detail": escape(result.error.detail),
                },
            )
        kill_points.reached("before_close")
        if not live.closed:  # no `post_forms` closed it: the answer ends here
            view.state = outcome.shown_as or fired.dest
            try:
                await publisher.close(self.render(view), session_status=live.session_status)
            except PublishError as exc:
                live.error = exc.error
        await self._after_close(thread, view, publisher, live, fields["message_ts"])
        if outcome.releases_answers and resume is not None:
            for key in resume.interrupt_keys:  # the forms open again
                row = await self.store.get_interrupt(key)
                if row is not None:
                    await self.desk.refresh(thread, row, error=result.form_error)

    async def _after_close(
        self,
        thread: Thread,
        view: ThreadView,
        publisher: LivePublisher,
        live: LiveAnswer,
        stored_ts: list[str],
    ) -> None:
        undelivered: dict[str, Any] = {}
        if live.error is not None:
            metrics.SLACK_ERRORS.labels(live.error).inc()
            log.error(
                "final answer not delivered",
                extra={"conversation": thread.id, "error": live.error},
            )
            undelivered = {
                "error_kind": "slack_delivery",
                "error_text": f"The answer could not be posted in Slack ({live.error})",
            }
        # Live messages of the run before that it never closed (its process died first) are
        # closed too; those it did close are no longer live and left alone.
        earlier = {ts for ts in thread.live_ts or [] if ts not in publisher.ts}
        if earlier:
            await self.desk.notifier.clear_cursors(
                thread.channel_id, thread.thread_ts, earlier, strict=True
            )
        # The live messages are closed now (continuations, forms, a failure stored with it).
        await self.store.update_thread(
            thread.id, when_run=thread.run_id, message_ts=publisher.ts, live_ts=[], **undelivered
        )
        if publisher.ts != stored_ts or publisher.redraw_from != (0, 0):
            await self.answers.posted(view, publisher.ts, publisher.redraw_from)


def _history_write(thread: Thread, recorder: RunRecorder, *, sent: bool) -> Also:
    if recorder.snapshot is not None:
        return replace_op(thread.id, recorder.snapshot)
    return append_op(thread.id, recorder.messages(), sent=sent)


def _insert(rows: Sequence[Interrupt]) -> Also:
    async def write(session: AsyncSession) -> None:
        session.add_all(rows)

    return write


def finished_result(
    thread: Thread, run_id: str, reducer: RunReducer, policy: ChannelPolicy, owner: str
) -> RunResult:
    """How a run that got RUN_FINISHED ended: with interrupts (their forms posted by `owner`,
    this process), or done."""
    assert reducer.finished is not None
    rows = interrupt_records.interrupts_of_run(
        thread=thread,
        run_id=run_id,
        finished=reducer.finished,
        legacy=reducer.legacy,
        recorder=reducer.recorder,
        approval_timeout=policy.approval_timeout,
    )
    reminder = policy.approval_reminder
    for row in rows:
        row.approvers = list(policy.approvers)
        row.form_intent, row.form_intent_at = owner, time.time()  # this process posts them
        if reminder and row.expires_at and row.expires_at - reminder > time.time():
            row.remind_at = row.expires_at - reminder
    if rows:
        return RunResult("interrupt", {"interrupts": [r.interrupt_id for r in rows]}, None, rows)
    return RunResult("run_finished")
