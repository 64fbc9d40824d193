"""What the agent is sent: the full history, server-kept history, and a thread's earlier talk."""

from __future__ import annotations

import asyncio
from typing import Any

from orchestrator.agent.targets import AgentTarget
from orchestrator.sandbox.agent_server import ScriptedAgent
from orchestrator.sandbox.slack_emulator import SlackEmulator
from tests.harness import ALICE, BOB, CHANNEL, SECRET, Harness, until


def roles(messages: list[dict[str, Any]]) -> list[str]:
    return [m["role"] for m in messages]


async def test_follow_up_sends_the_whole_history_with_tool_calls_and_results(
    harness: Harness, agent: ScriptedAgent
) -> None:
    await harness.start("tools")
    thread_ts = await harness.mention("check the deploy")
    await harness.settle(thread_ts)
    await harness.say("and the database?", thread_ts)
    await harness.settle(thread_ts, min_version=5)

    first, second = agent.requests[0].body, agent.requests[1].body
    assert second["threadId"] == first["threadId"]
    assert roles(first["messages"]) == ["user"]
    sent = second["messages"]
    assert sent[0]["content"] == "check the deploy" and sent[0]["name"] == ALICE
    assert sent[-1] == {**sent[-1], "role": "user", "content": "and the database?"}
    calls = [c for m in sent if m["role"] == "assistant" for c in m.get("toolCalls") or []]
    results = [m for m in sent if m["role"] == "tool"]
    assert calls and results
    assert {r["toolCallId"] for r in results} <= {c["id"] for c in calls}
    assert all(c["function"]["arguments"] for c in calls)  # the streamed arguments are kept


async def test_history_server_sends_only_the_new_messages(
    harness: Harness, agent: ScriptedAgent
) -> None:
    target = AgentTarget(name="stateful", url=agent.url("answer"), history="server")
    await harness.start("answer", agents=lambda _channel: target)
    thread_ts = await harness.mention("first question")
    await harness.settle(thread_ts)
    await harness.say("second question", thread_ts)
    await harness.settle(thread_ts, min_version=5)

    first, second = (r.body["messages"] for r in agent.requests[:2])
    assert [m["content"] for m in first] == ["first question"]
    assert [m["content"] for m in second] == ["second question"]
    # the store still holds the whole conversation, for `threads show` and a later switch
    stored = await harness.rt.store.messages(harness.thread_id(thread_ts))
    assert roles(stored) == ["user", "assistant", "user", "assistant"]


async def test_first_mention_in_a_discussion_seeds_the_earlier_messages(
    harness: Harness, agent: ScriptedAgent, slack: SlackEmulator
) -> None:
    await harness.start("answer")
    root = slack.post_user_message(CHANNEL, BOB, "prod is slow since 10:00")
    thread_ts = root["ts"]
    slack.post_user_message(CHANNEL, ALICE, "db latency looks fine", thread_ts)
    slack.post_user_message(
        CHANNEL, "U0DEPLOYBOT", "deployed web v42", thread_ts, bot_id="B0DEPLOY"
    )
    await harness.mention("what do you think?", thread_ts)
    await harness.settle(thread_ts)

    sent = agent.requests[0].body["messages"]
    assert [(m["role"], m.get("name"), m["content"]) for m in sent] == [
        ("user", BOB, "prod is slow since 10:00"),
        ("user", ALICE, "db latency looks fine"),
        ("user", "U0DEPLOYBOT", "deployed web v42"),
        ("user", ALICE, "what do you think?"),
    ]
    # seeded once: a follow-up does not read the thread again
    replies_calls = len(slack.calls_to("conversations.replies"))
    await harness.say("and now?", thread_ts)
    await harness.settle(thread_ts, min_version=5)
    assert len(slack.calls_to("conversations.replies")) == replies_calls
    assert roles(agent.requests[1].body["messages"]) == ["user"] * 4 + ["assistant", "user"]


async def test_seeded_context_is_capped_and_keeps_the_bots_own_messages_as_assistant(
    harness: Harness, agent: ScriptedAgent, slack: SlackEmulator
) -> None:
    await harness.start("answer", ORCH_THREAD_CONTEXT_LIMIT=2)
    first = await harness.mention("hello")  # the bot answers in this thread...
    await harness.settle(first)
    await harness.stop()  # ...and the thread is forgotten: a new database file
    harness.db_path = harness.db_path.with_name("other.db")
    await harness.start("answer", ORCH_THREAD_CONTEXT_LIMIT=2)
    slack.post_user_message(CHANNEL, BOB, "latest words", first)
    await harness.mention("summarise", first)
    await harness.settle(first)

    sent = agent.requests[-1].body["messages"]
    assert [m["role"] for m in sent] == ["assistant", "user", "user"]  # "hello" is beyond the cap
    assert sent[0]["content"].startswith("Hello")  # the bot's earlier answer, as its text
    assert [m["content"] for m in sent[1:]] == ["latest words", "summarise"]


async def test_a_mention_starting_a_thread_reads_no_context(
    harness: Harness, slack: SlackEmulator
) -> None:
    await harness.start("answer")
    thread_ts = await harness.mention("hi")
    await harness.settle(thread_ts)
    assert slack.calls_to("conversations.replies") == []


async def test_reading_the_discussion_waits_out_a_429_and_survives_a_refusal(
    harness: Harness, agent: ScriptedAgent, slack: SlackEmulator
) -> None:
    await harness.start("answer")
    root = slack.post_user_message(CHANNEL, BOB, "is the queue backed up?")
    slack.rate_limit("conversations.replies", retry_after=1)
    await harness.mention("have a look", root["ts"])
    await harness.settle(root["ts"])
    statuses = [c.status for c in slack.calls_to("conversations.replies")]
    assert statuses == [429, 200]
    assert [m["content"] for m in agent.requests[0].body["messages"]] == [
        "is the queue backed up?",
        "have a look",
    ]

    other = slack.post_user_message(CHANNEL, BOB, "and the workers?")
    slack.fail("conversations.replies", "missing_scope")
    await harness.mention("check them", other["ts"])
    row = await harness.settle(other["ts"])
    assert row.state == "done"  # answered without the earlier messages
    assert [m["content"] for m in agent.requests[1].body["messages"]] == ["check them"]


async def test_two_people_opening_a_discussion_at_once_make_one_thread_seeded_once(
    harness: Harness, agent: ScriptedAgent, slack: SlackEmulator
) -> None:
    await harness.start("answer")
    thread_ts = slack.post_user_message(CHANNEL, BOB, "prod is slow since 10:00")["ts"]
    asks = [
        slack.post_user_message(CHANNEL, user, text, thread_ts, mention=True)
        for user, text in ((ALICE, "what do you think?"), (BOB, "and the cache?"))
    ]
    await asyncio.gather(*(slack.deliver_event(harness.events_url, SECRET, ask) for ask in asks))
    await until(lambda: len(agent.requests) == 2)
    await harness.settle(thread_ts, ("done",))

    last = [m["content"] for m in agent.requests[-1].body["messages"]]
    assert last.count("prod is slow since 10:00") == 1
    assert {"what do you think?", "and the cache?"} <= set(last)
    history = await harness.history(thread_ts)
    assert (history[0].from_state, history[0].trigger) == ("idle", "user_message")
    assert sum(h.from_state == "idle" for h in history) == 1
