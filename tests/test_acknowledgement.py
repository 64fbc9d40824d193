"""A delivery is acknowledged only once what it asks for is stored: if the bot cannot even learn
who it is from Slack, Slack is asked to deliver again rather than told it was taken."""

from __future__ import annotations

import asyncio

from tests.harness import ALICE, CHANNEL, SECRET, Harness


async def test_a_delivery_that_cannot_be_authorized_is_not_acknowledged(harness: Harness) -> None:
    await harness.start()
    harness.slack.fail("auth.test", "internal_error")
    event = harness.slack.post_user_message(CHANNEL, ALICE, "hello", mention=True)
    first = await harness.slack.deliver_event(harness.events_url, SECRET, event, event_id="Ev1")
    assert first.status_code >= 500  # not taken: Slack delivers it again
    assert await harness.row(event["ts"]) is None
    again = await harness.slack.deliver_event(
        harness.events_url, SECRET, event, event_id="Ev1", retry_num=1
    )
    assert again.status_code == 200
    assert (await harness.settle(event["ts"])).state == "done"
    assert "Nothing here calls a real model." in harness.thread_text(event["ts"])


async def test_deliveries_arriving_together_after_a_start_ask_slack_who_the_bot_is_once(
    harness: Harness,
) -> None:
    await harness.start()
    asked_before = len(harness.slack.calls_to("auth.test"))
    harness.slack.slow("auth.test", 0.5)  # the first question is still out when the rest arrive
    events = [
        harness.slack.post_user_message(CHANNEL, ALICE, f"question {i}", mention=True)
        for i in range(8)
    ]
    answers = await asyncio.gather(
        *(harness.slack.deliver_event(harness.events_url, SECRET, event) for event in events)
    )
    assert [answer.status_code for answer in answers] == [200] * len(events)
    assert len(harness.slack.calls_to("auth.test")) - asked_before == 1
    for event in events:
        assert (await harness.settle(event["ts"])).state == "done"
        assert "Nothing here calls a real model." in harness.thread_text(event["ts"])
