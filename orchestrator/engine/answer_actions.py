"""What people do with a finished answer: rate it, regenerate it, or ask the channel for help.

The answer's buttons carry only its run id. Everything else (the thread, what the answer showed,
who rated or escalated) is read from the store, so old buttons keep working after a restart.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from orchestrator.config.channels import ChannelPolicy
from orchestrator.core import approvals, sentences
from orchestrator.engine.context import Context, Render
from orchestrator.engine.feedback_forwarder import FeedbackForwarder
from orchestrator.engine.firing import Firing
from orchestrator.engine.tasks import Tasks
from orchestrator.slack.notifier import Notifier
from persistence.models import Answer, Feedback, Thread
from persistence.store import Also, AnswerTaken, Store, answer_op, regenerate_op
from renderers.feedback import feedback_modal, read_feedback
from renderers.limits import text_from
from renderers.view import AnswerView, StepView, ThreadView, ToolCallView

log = logging.getLogger("orchestrator.answers")

UNKNOWN_ANSWER = sentences.UNKNOWN_ANSWER
UNKNOWN_CONVERSATION = sentences.UNKNOWN_CONVERSATION
THANKS = sentences.THANKS


class AnswerActions:
    def __init__(
        self,
        *,
        store: Store,
        firing: Firing,
        tasks: Tasks,
        notifier: Notifier,
        render: Render,
        policy: Callable[[str], ChannelPolicy],
        forwarder: FeedbackForwarder,
    ) -> None:
        self.store = store
        self.firing = firing
        self.tasks = tasks
        self.notifier = notifier
        self.render = render
        self.policy = policy
        self.forwarder = forwarder

    async def close(self) -> None:
        await self.forwarder.close()

    # --- hooks of a finishing run ------------------------------------------------------------

    def record(self, thread: Thread, view: ThreadView, message_ts: list[str]) -> Also:
        """The finished answer gets its buttons, and its record lands with the state change."""
        assert thread.run_id is not None
        policy = self.policy(thread.channel_id)
        view.answer = AnswerView(run_id=thread.run_id, can_escalate=bool(policy.escalate_to))
        row = Answer(
            run_id=thread.run_id,
            thread_id=thread.id,
            view=_snapshot(view),
            message_ts=list(message_ts),
            status="current",
            created_at=time.time(),
        )
        return answer_op(row)

    async def posted(
        self, view: ThreadView, message_ts: list[str], redraw_from: tuple[int, int] = (0, 0)
    ) -> None:
        """Where the answer landed, and from which message and character it can be redrawn."""
        if view.answer is None:
            return
        fields: dict[str, Any] = {"message_ts": list(message_ts)}
        if redraw_from != (0, 0):
            fields["view"] = {**_snapshot(view), "redraw_from": list(redraw_from)}
        await self.store.set_answer(view.answer.run_id, **fields)

    # --- feedback ----------------------------------------------------------------------------

    async def rate(
        self, *, run_id: str, user: str, rating: str, channel: str, trigger_id: str | None
    ) -> str | None:
        """👍 or 👎. A 👎 opens the details modal first (its trigger expires in 3 s)."""
        found = await self._find(run_id, channel)
        if isinstance(found, str):
            return found
        answer, thread = found
        note = THANKS if rating == "up" else None
        if rating == "down":
            earlier = await self._feedback_of(thread.id, run_id, user)
            if not await self._open_details(trigger_id, run_id, earlier):
                note = "Your 👎 is recorded, but the form for details could not be opened."
        row = await self.store.save_feedback(
            thread_id=thread.id,
            run_id=run_id,
            user=user,
            rating=rating,
            forward=self.forwarder.enabled,
        )
        await self.refresh(answer)
        self._forward(row)
        return note

    async def details(
        self, *, run_id: str, user: str, state_values: dict[str, Any]
    ) -> dict[str, str]:
        """The 👎 modal was submitted. Returns the errors to show on it (empty: stored)."""
        answer = await self.store.get_answer(run_id) if run_id else None
        if answer is None:
            return {"reasons": f"{UNKNOWN_ANSWER} Your feedback could not be saved."}
        reasons, comment, errors = read_feedback(state_values)
        if errors:
            return errors
        row = await self.store.save_feedback(
            thread_id=answer.thread_id,
            run_id=run_id,
            user=user,
            rating="down",
            details=(reasons, comment),
            forward=self.forwarder.enabled,
        )
        await self.refresh(answer)
        self._forward(row)
        return {}

    async def _open_details(
        self, trigger_id: str | None, run_id: str, earlier: Feedback | None
    ) -> bool:
        if not trigger_id:
            return False
        reasons = earlier.reasons if earlier and earlier.rating == "down" else None
        comment = earlier.comment if earlier and earlier.rating == "down" else None
        modal = feedback_modal(run_id, reasons, comment)
        return await self.notifier.open_modal(trigger_id, modal, about=run_id)

    async def _feedback_of(self, thread_id: str, run_id: str, user: str) -> Feedback | None:
        rows = await self.store.feedback_of(thread_id)
        return next((r for r in rows if r.run_id == run_id and r.user == user), None)

    def _forward(self, row: Feedback) -> None:
        if self.forwarder.enabled:
            self.tasks.spawn(self._send(row))

    async def _send(self, row: Feedback) -> None:
        try:
            await self.forwarder.send(row)
        except Exception:  # stored feedback is the truth; the scheduler sends it later
            log.exception("feedback forwarding crashed", extra={"feedback": row.id})

    # --- regenerate --------------------------------------------------------------------------

    async def regenerate(self, *, run_id: str, user: str, channel: str) -> str | None:
        """Run the answer's input again as a new run; the old answer stays, marked."""
        found = await self._find(run_id, channel)
        if isinstance(found, str):
            return found
        answer, thread = found
        refusal = _not_regenerable(answer, thread)
        if refusal and answer.status != "regenerated":
            # The thread was read after the answer: a regeneration stored in between (the
            # thread busy with it) shows in the answer read again, and is said as such.
            answer = await self.store.get_answer(run_id) or answer
            refusal = _not_regenerable(answer, thread)
        if refusal:
            return refusal
        try:
            fired = await self.firing.fire(
                thread.id,
                "regenerate",
                Context(actor=user),
                detail={"run": run_id},
                also=[regenerate_op(thread.id, run_id, user)],
                expect_state="done",
            )
        except AnswerTaken:
            fired = None
        fresh = await self.store.get_answer(run_id)
        if fired is None:
            thread = await self.store.get_thread(thread.id) or thread
            return _not_regenerable(fresh or answer, thread) or (
                "This answer can no longer be regenerated; the conversation has moved on."
            )
        if fresh is not None:
            await self.refresh(fresh)
        return None

    # --- escalation --------------------------------------------------------------------------

    async def escalate(self, *, run_id: str, user: str, channel: str) -> str | None:
        """Get help with an answer: see `_escalate`."""
        found = await self._find(run_id, channel)
        if isinstance(found, str):
            return found
        return await self._escalate(found[1], user, run_id)

    async def escalate_failure(self, *, thread_id: str, user: str, channel: str) -> str | None:
        """Get help with a run that failed (the button of its error message): see `_escalate`."""
        thread = await self.store.get_thread(thread_id) if thread_id else None
        if thread is None:
            return UNKNOWN_CONVERSATION
        return _elsewhere(thread, channel) or await self._escalate(thread, user, thread.run_id)

    async def _escalate(self, thread: Thread, user: str, run_id: str | None) -> str | None:
        """Ping the channel's people once per thread; later clickers hear who did it."""
        targets = self.policy(thread.channel_id).escalate_to
        if not targets:
            return "Nobody is set up to help in this channel (an admin can set `escalate_to`)."
        row = await self.store.add_escalation(thread.id, user, targets, run_id)
        if row is None:
            earlier = await self.store.get_escalation(thread.id)
            who = f"<@{earlier.user}>" if earlier else "Someone"
            when = f" at {approvals.moment(earlier.at)}" if earlier else ""
            return f"{who} already asked for help here{when}; {_pings(targets)} were notified."
        text = f"🆘 {_pings(targets)}: <@{user}> asked for help with this conversation."
        if not await self.notifier.say(thread.channel_id, thread.thread_ts, text, about=thread.id):
            await self.store.remove_escalation(thread.id, user)
            log.warning("escalation not posted", extra={"conversation": thread.id})
            return "Your request for help could not be posted in the thread; please try again."
        await self.store.record(
            thread, "escalated", user, {"run": run_id, "targets": list(targets)}
        )
        return None

    # --- showing an answer again ---------------------------------------------------------

    async def refresh(self, answer: Answer) -> None:
        """Draw the answer again with its current counts and marks (edits its Slack messages)."""
        thread = await self.store.get_thread(answer.thread_id)
        fresh = await self.store.get_answer(answer.run_id)
        if thread is None or fresh is None or not fresh.message_ts:
            return
        counts = await self.store.feedback_counts(fresh.run_id)
        first, offset = (fresh.view or {}).get("redraw_from", (0, 0))
        view = _restore(thread, fresh, offset)
        view.answer = AnswerView(
            run_id=fresh.run_id,
            thumbs_up=counts.get("up", 0),
            thumbs_down=counts.get("down", 0),
            regenerated_by=fresh.regenerated_by if fresh.status == "regenerated" else None,
            can_escalate=bool(self.policy(thread.channel_id).escalate_to),
        )
        messages = self.render(view)
        message_ts = fresh.message_ts[first:]  # streamed messages before these keep their text
        pairs = list(zip(message_ts, messages, strict=False))
        if len(messages) == len(message_ts):
            pairs = pairs[-1:]  # the buttons and notes live in the last message
        for ts, message in pairs:
            await self.notifier.redraw(
                thread.channel_id, ts, message, what="answer", about=thread.id
            )

    async def _find(self, run_id: str, channel: str) -> tuple[Answer, Thread] | str:
        answer = await self.store.get_answer(run_id) if run_id else None
        thread = await self.store.get_thread(answer.thread_id) if answer else None
        if answer is None or thread is None:
            return UNKNOWN_ANSWER
        return _elsewhere(thread, channel) or (answer, thread)


def _elsewhere(thread: Thread, channel: str) -> str | None:
    """A refusal for a button clicked in another channel than its conversation's."""
    if channel and thread.channel_id != channel:
        log.warning("click on a button of another channel", extra={"conversation": thread.id})
        return sentences.NOT_HERE
    return None


def _not_regenerable(answer: Answer, thread: Thread) -> str | None:
    if answer.status == "regenerated":
        who = f"<@{answer.regenerated_by}>" if answer.regenerated_by else "someone"
        return f"This answer was already regenerated by {who}."
    if thread.run_id != answer.run_id:
        return "Only the latest answer in this thread can be regenerated."
    if thread.state != "done":
        return "The agent is still busy in this thread; try again once it has answered."
    return None


def _pings(targets: tuple[str, ...] | list[str]) -> str:
    return ", ".join(f"<!subteam^{t}>" if t.startswith("S") else f"<@{t}>" for t in targets)


def _snapshot(view: ThreadView) -> dict[str, Any]:
    return {
        "text": view.text,
        "tools": [
            {"id": c.id, "name": c.name, "status": c.status} for c in view.tool_calls.values()
        ],
        "steps": [{"name": s.name, "status": s.status} for s in view.steps],
    }


def _restore(thread: Thread, answer: Answer, offset: int = 0) -> ThreadView:
    """The answer's view as it finished, its text from character `offset` on."""
    saved = answer.view or {}
    text = text_from(str(saved.get("text") or ""), offset)
    return ThreadView(
        conversation_id=thread.id,
        state="done",
        run_id=answer.run_id,
        requester=thread.requester,
        chunks=[text] if text else [],
        tool_calls={
            t["id"]: ToolCallView(t["id"], t["name"], status=t["status"])
            for t in saved.get("tools", [])
        },
        steps=[StepView(s["name"], s["status"]) for s in saved.get("steps", [])],
    )
