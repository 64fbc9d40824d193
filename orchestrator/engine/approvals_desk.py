"""The approvals desk: clicks on forms, deadlines and reminders, the forms themselves.

Exactly once per interrupt: a click claims its answer with a compare-and-set in the store before
anything is sent, so the backend receives one resume per interrupt whatever Slack and people do.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from orchestrator import kill_points
from orchestrator.config.channels import ChannelPolicy
from orchestrator.core import approvals, sentences
from orchestrator.engine import leases
from orchestrator.engine.context import Context, LiveAnswer, Render
from orchestrator.engine.firing import Firing
from orchestrator.slack.notifier import Notifier
from orchestrator.slack.publisher import Publisher, PublishError
from persistence.models import Interrupt, Thread
from persistence.store import RELEASED, Store, fence_op
from renderers.edit_args import edit_args_modal
from renderers.view import SlackMessage, ThreadView

log = logging.getLogger("orchestrator.engine")

OPEN = ("pending", "claimed", "sending")  # a form that is still in play
FORM_EVENT = "orchestrator_form"  # the metadata event type of a form message


class ApprovalsDesk:
    def __init__(
        self,
        *,
        store: Store,
        firing: Firing,
        notifier: Notifier,
        render: Render,
        policy: Callable[[str], ChannelPolicy],
    ) -> None:
        self.store = store
        self.firing = firing
        self.notifier = notifier
        self.render = render
        self.policy = policy

    async def answer(
        self,
        *,
        interrupt_key: str,
        user: str,
        approved: bool,
        state_values: dict[str, Any],
        channel: str,
        message_ts: str,
        message: dict[str, Any] | None = None,
    ) -> str | None:
        """A click on Approve or Reject. Returns an ephemeral note for the clicker, if any.

        The answer is typed and validated against the interrupt's schema before it is claimed:
        an answer the server would refuse is never sent, the form shows why instead. `message`
        is the clicked message as Slack shows it: a form is clickable as soon as people see it,
        before its poster has stored its ts."""
        row, thread, note = await self._answerable(
            interrupt_key, user, channel, message_ts, message or {}
        )
        if row is None or thread is None:
            return note
        answer = approvals.answer_of(row, approved=approved, state_values=state_values)
        if answer.errors:
            await self.refresh(thread, row, error="; ".join(answer.errors))
            return None
        return await self._claim(thread, row, user, answer)

    async def open_edit(
        self, *, interrupt_key: str, user: str, channel: str, message_ts: str, trigger_id: str
    ) -> str | None:
        """A click on "Edit arguments": the modal with the arguments as JSON."""
        row, _thread, note = await self._answerable(interrupt_key, user, channel, message_ts)
        if row is None:
            return note
        modal = edit_args_modal(row.id, row.tool_name, approvals.arguments_text(row))
        if not await self.notifier.open_modal(trigger_id, modal, about=row.thread_id):
            return sentences.MODAL_FAILED
        return None

    async def check_edit(self, *, interrupt_key: str, user: str, text: str) -> str | None:
        """The modal was submitted: the error to show in it, or None once the answer (approve
        with these arguments) is claimed; `send` then resumes the run."""
        row = await self.store.get_interrupt(interrupt_key)
        if row is None:
            return sentences.UNKNOWN_REQUEST
        if user not in await self.approvers(row):
            return sentences.only(await self.approvers(row))
        if row.status != "pending":
            return sentences.already(row)
        answer = approvals.edited_answer(row, text)
        if answer.errors:
            return "; ".join(answer.errors)
        if not await self._cas_claim(row, user, answer):
            return sentences.already(await self.store.get_interrupt(row.id) or row)
        return None

    async def send(self, interrupt_key: str, user: str) -> str | None:
        """Resume with a claimed answer (once the run's other forms are answered too)."""
        row = await self.store.get_interrupt(interrupt_key)
        thread = await self.store.get_thread(row.thread_id) if row else None
        if row is None or thread is None:
            return sentences.UNKNOWN_REQUEST
        return await self._after_claim(thread, row.id, user, row.decision or "approved")

    async def _answerable(
        self,
        interrupt_key: str,
        user: str,
        channel: str,
        message_ts: str,
        message: dict[str, Any] | None = None,
    ) -> tuple[Interrupt | None, Thread | None, str | None]:
        """The pending interrupt a click answers, or why it cannot be answered by this person."""
        row = await self.store.get_interrupt(interrupt_key)
        thread = await self.store.get_thread(row.thread_id) if row else None
        if row is None or thread is None:
            return None, None, sentences.UNKNOWN_REQUEST
        if thread.channel_id != channel or not await self._from_form(
            thread, row, message_ts, message or {}
        ):
            log.warning(
                "click on a form of another thread", extra={"conversation": thread.id, "user": user}
            )
            return None, None, sentences.NOT_HERE
        allowed = await self.approvers(row)
        if user not in allowed:
            await self.store.record(
                thread, "approval_refused", user, {"interrupt": row.interrupt_id}
            )
            return None, None, sentences.only(allowed)
        if row.status != "pending":
            return None, None, sentences.already(row)
        return row, thread, None

    async def _from_form(
        self, thread: Thread, row: Interrupt, message_ts: str, message: dict[str, Any]
    ) -> bool:
        """Whether the click came from the interrupt's own form. Once its ts is stored, that
        message; before, a message of the thread that carries this interrupt's buttons (Slack
        signs the payload with the message as shown), whose ts is stored now."""
        if row.form_ts is not None:
            return row.form_ts == message_ts
        in_thread = message.get("thread_ts") in (thread.thread_ts, None)
        if not (message_ts and in_thread and approvals.carries_form(message, row.id)):
            return False
        await self.store.set_interrupt(row.id, form_ts=message_ts)
        row.form_ts = message_ts
        return True

    async def _claim(
        self, thread: Thread, row: Interrupt, user: str, answer: approvals.Answer
    ) -> str | None:
        if not await self._cas_claim(row, user, answer):
            return sentences.already(await self.store.get_interrupt(row.id) or row)
        kill_points.reached("after_claim")
        return await self._after_claim(thread, row.id, user, answer.decision)

    async def _cas_claim(self, row: Interrupt, user: str, answer: approvals.Answer) -> bool:
        return await self.store.cas_interrupt(
            row.id,
            "pending",
            status="claimed",
            answered_by=user,
            answered_at=time.time(),
            answer=answer.payload,
            decision=answer.decision,
        )

    async def _after_claim(self, thread: Thread, key: str, user: str, decision: str) -> str | None:
        row = await self.store.get_interrupt(key)
        assert row is not None
        await self.refresh(thread, row)
        resume = await self.resume_of(thread, row.run_id)
        trigger = "approval_rejected" if decision == "rejected" else "approval_submitted"
        fired = await self.firing.fire(
            thread.id,
            trigger,
            Context(actor=user, resume=resume),
            detail={"interrupt": row.interrupt_id, "decision": decision, "values": row.answer},
            expect_state="awaiting_approval",
        )
        if fired is None:  # the thread moved on: the answer goes back, unless a run took it
            await self.store.cas_interrupt(key, "claimed", **RELEASED)
            return sentences.MOVED_ON
        return None

    async def resume_of(self, thread: Thread, run_id: str | None) -> approvals.Resume:
        rows = await self.store.interrupts_of(thread.id, run_id)
        answered = ("claimed", "sending", "expired")
        return approvals.resume_for([r for r in rows if r.status in answered])

    async def expire(self, row: Interrupt) -> None:
        """The deadline passed: the form says so and the backend is told `cancelled`."""
        expired = await self.store.cas_interrupt(
            row.id, "pending", status="expired", decision="cancelled", answered_at=time.time()
        )
        thread = await self.store.get_thread(row.thread_id)
        if not expired or thread is None:
            return
        fresh = await self.store.get_interrupt(row.id)
        assert fresh is not None
        await self.refresh(thread, fresh)
        resume = await self.resume_of(thread, row.run_id)
        await self.firing.fire(
            thread.id,
            "approval_expired",
            Context(actor="scheduler", resume=resume),
            detail={"interrupt": row.interrupt_id},
            expect_state="awaiting_approval",
        )

    async def remind(self, row: Interrupt) -> None:
        """Nudge the people who can answer before the deadline passes (once)."""
        if not await self.store.cas_interrupt(row.id, "pending", remind_at=None):
            return
        thread = await self.store.get_thread(row.thread_id)
        if thread is None:
            return
        link = await self.notifier.permalink(thread.channel_id, row.form_ts)
        who = sentences.people(await self.approvers(row))
        text = sentences.reminder(who, link, approvals.moment(row.expires_at))
        await self.notifier.say(thread.channel_id, thread.thread_ts, text, about=thread.id)

    async def approvers(self, row: Interrupt) -> set[str]:
        return await self.people(row.approvers or ["requester"], row.requester)

    async def people(self, approvers: Sequence[str], requester: str | None) -> set[str]:
        """The user ids an approvers list names: users, members of user groups, the requester."""
        allowed: set[str] = set()
        for who in approvers:
            if who == "requester":
                allowed.add(requester or "")
            elif who.startswith("S"):
                allowed |= await self.notifier.group_members(who)
            else:
                allowed.add(who)
        return allowed

    async def settle(self, thread: Thread, keys: Sequence[str]) -> None:
        """The backend accepted the resume: claimed answers become final records. Only while
        this process holds the run's lease (`LeaseLost` otherwise): a process that took the
        run over decides about the answers from what it finds once it holds the lease."""
        fence = fence_op(thread.id, self.firing.owner)
        for key in keys:
            row = await self.store.get_interrupt(key)
            if row is None:
                continue
            final = "rejected" if row.decision in ("rejected", "cancelled") else "approved"
            if await self.store.cas_interrupt(key, ("claimed", "sending"), [fence], status=final):
                row.status = final
                kill_points.reached("after_settle")
                await self.refresh(thread, row)

    async def refresh(self, thread: Thread, row: Interrupt, error: str | None = None) -> None:
        """Draw a posted form again with its current state (and an error, if any)."""
        if row.form_ts:
            message = self.form_message(thread, row, error)
            await self.notifier.redraw(
                thread.channel_id, row.form_ts, message, what="form", about=thread.id
            )

    def form_message(
        self, thread: Thread, row: Interrupt, error: str | None = None
    ) -> SlackMessage:
        view = ThreadView(
            conversation_id=thread.id,
            state="awaiting_approval",
            requester=thread.requester,
            interrupts=[approvals.view_of(row, error)],
        )
        message = self.render(view)[-1]
        message.metadata = {"event_type": FORM_EVENT, "event_payload": {"interrupt": row.id}}
        return message

    async def open_forms(self, thread: Thread) -> list[Interrupt]:
        rows = await self.store.interrupts_of(thread.id, thread.run_id)
        return [r for r in rows if r.status in OPEN]

    async def post_forms(
        self,
        thread: Thread,
        live: LiveAnswer | None,
        *,
        stale_before: float | None = None,
        unposted: Sequence[Interrupt] | None = None,
    ) -> None:
        """Every open form of the run that Slack has not shown yet is posted, once.

        A finishing run closes its live answer first, so the forms come after it; without one
        (a restart found forms stored but never posted) each form is a message of its own.
        Each form's poster is stored before Slack is asked (see `take_forms`). `unposted`: those
        forms, read already (recovery reads them for every thread at once).
        """
        if unposted is None:
            unposted = [r for r in await self.open_forms(thread) if not r.form_ts]
        if live is not None:
            mine = [r for r in unposted if r.form_intent == self.firing.owner]
            await self._close_with(thread, live, mine)
            return
        for row in await self.take_forms(thread, unposted, stale_before=stale_before):
            publisher = Publisher(self.notifier.client, thread.channel_id, thread.thread_ts)
            try:
                await publisher.close([self.form_message(thread, row)])
            except PublishError as exc:
                log.warning(
                    "form not posted", extra={"conversation": thread.id, "error": exc.error}
                )
                continue
            kill_points.reached("mid_publish")
            await self.store.set_interrupt(row.id, form_ts=publisher.ts[0])

    async def take_forms(
        self, thread: Thread, unposted: Sequence[Interrupt], *, stale_before: float | None = None
    ) -> list[Interrupt]:
        """The unposted forms this process posts: those it takes over from a poster that is gone
        (dead, or silent since `stale_before`), less those Slack already shows (found by their
        metadata, and stored). One process wins each form."""
        taken: list[Interrupt] = []
        for row in unposted:
            owner = row.form_intent
            alive = owner is not None and not leases.is_dead(owner)  # this process included
            silent = stale_before is not None and (row.form_intent_at or 0.0) < stale_before
            if alive and not silent:
                continue  # its poster may still be at it
            if await self.store.take_form(row.id, owner, self.firing.owner, time.time()):
                taken.append(row)
        if not taken or all(r.form_intent is None for r in taken):
            return taken
        # A poster that died may have posted: look before posting again (and if Slack cannot
        # say, post nothing now; the next look will).
        shown = await self.notifier.posted_forms(thread.channel_id, thread.thread_ts, FORM_EVENT)
        if shown is None:
            return []
        for row in [r for r in taken if r.id in shown]:
            await self.store.set_interrupt(row.id, form_ts=shown[row.id])
        return [r for r in taken if r.id not in shown]

    async def _close_with(
        self, thread: Thread, live: LiveAnswer, forms: Sequence[Interrupt]
    ) -> None:
        live.view.state = live.shown_as or thread.state
        live.closed = True
        try:
            await live.publisher.close(
                self.render(live.view),
                [self.form_message(thread, r) for r in forms],
                session_status=live.session_status,
            )
        except PublishError as exc:
            live.error = exc.error
            return
        kill_points.reached("mid_publish")
        for row, ts in zip(forms, live.publisher.extra_ts, strict=False):
            await self.store.set_interrupt(row.id, form_ts=ts)
