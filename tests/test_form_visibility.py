"""A form works as soon as people can see it: a click that arrives before the form's poster has
heard back from Slack (and stored the form's ts) is accepted, and only the form's own message
can answer it."""

from __future__ import annotations

from renderers.common import ACTION_APPROVE
from tests.harness import ALICE, CHANNEL, Harness, actions_of, find_with_action, until
from tests.test_e2e_approvals import answers


def has_form(harness: Harness, thread_ts: str) -> bool:
    return any(ACTION_APPROVE in actions_of(m) for m in harness.slack.thread(CHANNEL, thread_ts))


async def test_a_click_before_the_form_ts_is_stored_is_accepted(harness: Harness) -> None:
    harness.slack.slow("chat.postMessage", 1.5, containing=ACTION_APPROVE)
    await harness.start("interrupt-outcome")
    thread_ts = await harness.mention("please scale web")
    await until(lambda: has_form(harness, thread_ts))
    (row,) = await harness.interrupts(thread_ts)
    assert row.form_ts is None  # Slack shows the form; its poster does not know its ts yet
    form = find_with_action(harness.slack.thread(CHANNEL, thread_ts), ACTION_APPROVE)
    response = await harness.click(
        form, ACTION_APPROVE, actions_of(form)[ACTION_APPROVE], values=answers("8", "at once")
    )
    assert response.status_code == 200
    await harness.settle(thread_ts, ("done",))
    notes = [m.text for m in harness.slack.ephemerals(CHANNEL, ALICE)]
    assert not [n for n in notes if "does not belong" in n]
    assert harness.agent.resumes == 1
    (row,) = await harness.interrupts(thread_ts)
    assert (row.status, row.form_ts) == ("approved", form.ts)


async def test_before_its_ts_is_stored_a_form_still_answers_only_from_its_own_message(
    harness: Harness,
) -> None:
    harness.slack.slow("chat.postMessage", 1.5, containing=ACTION_APPROVE)
    await harness.start("interrupt-outcome")
    thread_ts = await harness.mention("please scale web")
    await until(lambda: has_form(harness, thread_ts))
    form = find_with_action(harness.slack.thread(CHANNEL, thread_ts), ACTION_APPROVE)
    key = actions_of(form)[ACTION_APPROVE]
    other = harness.slack.post_user_message(CHANNEL, ALICE, "not a form", thread_ts)
    stored = harness.slack.thread(CHANNEL, thread_ts)
    not_the_form = next(m for m in stored if m.ts == other["ts"])
    not_the_form.blocks = [
        {"type": "actions", "block_id": "actions", "elements": [
            {"type": "button", "action_id": ACTION_APPROVE, "value": "another", "text": {
                "type": "plain_text", "text": "Approve"}}]}
    ]  # fmt: skip
    await harness.click(not_the_form, ACTION_APPROVE, key, values=answers("8", "forged"))
    await until(lambda: bool(harness.slack.ephemerals(CHANNEL, ALICE)))
    notes = [m.text for m in harness.slack.ephemerals(CHANNEL, ALICE)]
    assert any("does not belong" in n for n in notes)
    (row,) = await harness.interrupts(thread_ts)
    assert row.status == "pending"
