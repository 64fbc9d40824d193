"""What each state's renderer shows, and that Slack would accept every message it produces."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from renderers import RENDERERS, get_renderer
from renderers.common import ACTION_APPROVE, ACTION_REJECT, ACTION_RETRY, ACTION_STOP
from renderers.forms import fields_from_list
from renderers.limits import CONTINUED, pack_messages, split_text, truncate
from renderers.markdown import to_mrkdwn
from renderers.view import (
    ErrorView,
    FormField,
    InterruptView,
    SlackMessage,
    StepView,
    ThreadView,
    ToolCallView,
)

DATA = Path(__file__).parent / "data"

# --- a Block Kit limit check, written from Slack's documented limits ----------------------------


def text_objects(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        own = [node] if node.get("type") in ("plain_text", "mrkdwn") else []
        return own + [t for value in node.values() for t in text_objects(value)]
    if isinstance(node, list):
        return [t for item in node for t in text_objects(item)]
    return []


def check_block(block: dict[str, Any]) -> None:
    kind = block["type"]
    for text in text_objects(block):
        assert text["text"].strip(), f"empty text object in {block}"
        assert len(text["text"]) <= 3000
    if kind == "section":
        assert len(block["text"]["text"]) <= 3000
    if kind == "header":
        assert len(block["text"]["text"]) <= 150
    if kind == "context":
        assert 1 <= len(block["elements"]) <= 10
    if kind == "actions":
        assert 1 <= len(block["elements"]) <= 25
        for element in block["elements"]:
            assert len(element["text"]["text"]) <= 75
            assert len(element.get("value", "")) <= 2000
    if kind == "input":
        assert len(block["label"]["text"]) <= 2000
        assert block["dispatch_action"] is False
        element = block["element"]
        options = element.get("options", [])
        assert len(options) <= 100
        for option in options:
            assert len(option["text"]["text"]) <= 75
            assert 1 <= len(option["value"]) <= 150
        if "select" in element["type"]:
            assert options, "a select needs options"
        if "initial_option" in element:
            assert element["initial_option"] in options
        for initial in element.get("initial_options", []):
            assert initial in options
    # slack_sdk validates lengths too, and a lossless round trip catches misspelt keys.
    assert Block.parse(block).to_dict() == block  # type: ignore[union-attr]


def assert_slack_accepts(messages: list[SlackMessage]) -> None:
    assert messages, "a renderer must produce at least the live message"
    for message in messages:
        assert 0 < len(message.text) <= 40000
        assert 1 <= len(message.blocks) <= 50
        ids = [block["block_id"] for block in message.blocks if "block_id" in block]
        assert len(ids) == len(set(ids)), f"duplicate block ids {ids}"
        assert all(len(block_id) <= 255 for block_id in ids)
        markdown = sum(len(t["text"]) for t in text_objects(message.blocks))
        assert markdown <= 12000
        for block in message.blocks:
            check_block(block)
    json.dumps([m.blocks for m in messages])  # plain JSON, nothing exotic


def sections(messages: list[SlackMessage]) -> list[str]:
    return [b["text"]["text"] for m in messages for b in m.blocks if b["type"] == "section"]


def visible(messages: list[SlackMessage]) -> str:
    return "\n".join(t["text"] for m in messages for t in text_objects(m.blocks))


def blocks_of(messages: list[SlackMessage], kind: str) -> list[dict[str, Any]]:
    return [b for m in messages for b in m.blocks if b["type"] == kind]


# --- views ---------------------------------------------------------------------------------------


def legacy_interrupt_value() -> dict[str, Any]:
    """The `on_interrupt` CUSTOM event's value from the recorded LangGraph stream."""
    for line in (DATA / "langgraph-legacy-interrupt.sse").read_text().splitlines():
        if line.startswith("data: "):
            event = json.loads(line.removeprefix("data: "))
            if event["type"] == "CUSTOM" and event["name"] == "on_interrupt":
                return json.loads(event["value"])
    raise AssertionError("no on_interrupt event in the recording")


def legacy_interrupt(**changes: Any) -> InterruptView:
    value = legacy_interrupt_value()
    interrupt = InterruptView(
        id="825b8cdef84aaeb578806663837e0e4b",
        message=value["message"],
        fields=fields_from_list(value["fields"]),
    )
    for key, new in changes.items():
        setattr(interrupt, key, new)
    return interrupt


def view(state: str, text: str = "", **changes: Any) -> ThreadView:
    result = ThreadView(conversation_id="conv-1", state=state, chunks=[text] if text else [])
    for key, new in changes.items():
        setattr(result, key, new)
    return result


def tools(count: int, status: str = "done") -> dict[str, ToolCallView]:
    return {
        f"t{i}": ToolCallView(id=f"t{i}", name=f"tool_{i}", status=status)  # type: ignore[arg-type]
        for i in range(count)
    }


def long_answer(chars: int) -> str:
    words: list[str] = []
    i = 0
    while sum(len(w) + 1 for w in words) < chars:
        words.append(f"word{i}")
        i += 1
        if i % 97 == 0:
            words.append("\n\n")
        elif i % 13 == 0:
            words.append("\n")
    return " ".join(words)[:chars]


def every_field_kind() -> list[FormField]:
    return [
        FormField("name", "Name", "text", default="web", required=True),
        FormField("why", "Why", "textarea", description="Tell us"),
        FormField("size", "Size", "select", options=["s", "m", "l"], default="m"),
        FormField("zones", "Zones", "multiselect", options=["a", "b", "c"], default=["a", "c"]),
        FormField("force", "Force", "boolean", default=False),
        FormField("count", "Count", "number", default=3, integer=True),
        FormField("ratio", "Ratio", "number", default=0.5),
        FormField("when", "When", "date", default="2025-01-31"),
    ]


SAMPLE_VIEWS = {
    "empty": lambda state: view(state),
    "short": lambda state: view(
        state,
        "Here is **the** plan & <@U1>",
        tool_calls=tools(2),
        steps=[StepView("plan", "done"), StepView("execute")],
    ),
    "long": lambda state: view(state, long_answer(60_000)),
    "many_tools": lambda state: view(state, "x", tool_calls=tools(40, "running"), queued=3),
    "code": lambda state: view(state, "```\n" + "a <b> & c\n" * 2000 + "```"),
    "approval": lambda state: view(
        state,
        "Partial",
        interrupts=[
            legacy_interrupt(tool_name="scale", tool_args=json.dumps({"blob": "z" * 10_000})),
            InterruptView(id="i2", message="Details?", fields=every_field_kind(), error="Bad"),
            InterruptView(id="i3", message="Again", fields=legacy_interrupt().fields),
            InterruptView(id="i4", message="Done", status="approved", answered_by="U1"),
        ],
    ),
    "errored": lambda state: view(
        state,
        long_answer(20_000),
        error=ErrorView("run_error", "Run failed " * 40, "detail " * 600),
        interrupted="stream lost",
    ),
    "huge_labels": lambda state: view(
        state,
        interrupts=[
            InterruptView(
                id="x" * 400,
                message="m" * 5000,
                approve_label="A" * 200,
                reject_label="R" * 200,
                expires_at="tomorrow",
                fields=[
                    FormField(
                        "f" * 300, "L" * 3000, "select", options=[f"{i}" * 200 for i in range(150)]
                    ),
                    FormField("d", "", "text", description="h" * 3000, default="v" * 5000),
                ],
            )
        ],
    ),
}


@pytest.mark.parametrize("state", sorted(RENDERERS))
@pytest.mark.parametrize("sample", sorted(SAMPLE_VIEWS))
def test_every_renderer_output_is_accepted_by_slack(state: str, sample: str) -> None:
    messages = get_renderer(state)(SAMPLE_VIEWS[sample](state))
    assert_slack_accepts(messages)


@pytest.mark.parametrize("state", sorted(RENDERERS))
def test_renderers_are_deterministic(state: str) -> None:
    first = get_renderer(state)(SAMPLE_VIEWS["approval"](state))
    second = get_renderer(state)(SAMPLE_VIEWS["approval"](state))
    assert first == second


def test_get_renderer_names_the_valid_renderers() -> None:
    assert set(RENDERERS) == {"idle", "streaming", "awaiting_approval", "errored", "done"}
    with pytest.raises(KeyError, match="awaiting_approval") as raised:
        get_renderer("nope")
    assert "nope" in str(raised.value)


# --- long answers --------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["streaming", "done"])
def test_a_60k_answer_spans_several_messages_and_loses_nothing(state: str) -> None:
    answer = long_answer(60_000)
    messages = get_renderer(state)(view(state, answer))
    assert_slack_accepts(messages)
    assert len(messages) >= 5
    assert CONTINUED not in visible(messages[:1])
    for continuation in messages[1:]:
        assert continuation.blocks[0]["elements"][0]["text"] == CONTINUED
    shown = " ".join(sections(messages)).replace("▌", "")
    assert shown.split() == answer.split()


def test_code_fences_are_closed_and_reopened_across_chunks() -> None:
    code_lines = [f"line {i} <tag> & more" for i in range(1500)]
    answer = "Intro.\n\n```python\n" + "\n".join(code_lines) + "\n```\n\nOutro."
    messages = get_renderer("done")(view("done", answer))
    assert_slack_accepts(messages)
    chunks = sections(messages)
    assert len(chunks) > 3
    for chunk in chunks:
        assert chunk.count("```") % 2 == 0, chunk[-80:]
    shown_lines = [
        line for chunk in chunks for line in chunk.split("\n") if line.startswith("line ")
    ]
    escaped = [
        line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") for line in code_lines
    ]
    assert shown_lines == escaped
    assert chunks[0].startswith("Intro.") and chunks[-1].endswith("Outro.")


def test_split_text_prefers_paragraphs_then_lines_then_words() -> None:
    paragraph = "a" * 60 + "\n\n" + "b" * 30 + "\n" + "c" * 30
    assert split_text(paragraph, 100) == ["a" * 60, "b" * 30 + "\n" + "c" * 30]
    assert split_text("x" * 50 + "\n" + "y" * 60, 100) == ["x" * 50, "y" * 60]
    assert split_text("one two three four five", 14 + 8) == ["one two three", "four five"]
    assert all(len(c) <= 100 for c in split_text("z" * 1000, 100))
    assert "".join(split_text("z" * 1000, 100)) == "z" * 1000


def test_truncate_stays_within_the_limit_with_a_marker() -> None:
    assert truncate("short", 10) == "short"
    assert truncate("x" * 100, 10) == "x" * 9 + "…"
    assert truncate("x" * 100, 20, " [cut]") == "x" * 14 + " [cut]"
    assert len(truncate("x" * 100, 2, "...")) == 2


def test_pack_keeps_a_form_together_and_starts_a_message_on_block_id_clash() -> None:
    filler = [[{"type": "section", "text": {"type": "mrkdwn", "text": f"s{i}"}}] for i in range(45)]
    form = [
        {"type": "section", "block_id": "field:a", "text": {"type": "mrkdwn", "text": f"f{i}"}}
        for i in range(8)
    ]
    messages = pack_messages([*filler, form[:1], form[:1]], "fallback")
    assert [len(m.blocks) for m in messages] == [46, 2]
    messages = pack_messages(
        [*filler, [b | {"block_id": f"b{i}"} for i, b in enumerate(form)]], "x"
    )
    assert len(messages) == 2 and len(messages[1].blocks) == 9  # moved whole, not split


def test_pack_spreads_a_group_too_big_for_any_message() -> None:
    group = [{"type": "section", "text": {"type": "mrkdwn", "text": f"s{i}"}} for i in range(70)]
    messages = pack_messages([group], "fallback")
    assert_slack_accepts(messages)
    assert [len(m.blocks) for m in messages] == [50, 21]
    assert messages[1].blocks[0]["elements"][0]["text"] == CONTINUED
    assert messages[1].text.startswith("s50")


# --- streaming, idle, done -----------------------------------------------------------------------


def test_idle_says_thinking_and_how_many_messages_wait() -> None:
    assert "Thinking…" in visible(get_renderer("idle")(view("idle")))
    assert "queued" not in visible(get_renderer("idle")(view("idle")))
    assert "2 messages queued" in visible(get_renderer("idle")(view("idle", queued=2)))


def test_streaming_shows_text_with_cursor_and_tool_progress() -> None:
    calls = {
        "a": ToolCallView("a", "search_docs", status="done"),
        "b": ToolCallView("b", "fetch_page", status="running"),
        "c": ToolCallView("c", "deploy", status="failed"),
    }
    steps = [StepView("plan", "done"), StepView("execute")]
    messages = get_renderer("streaming")(
        view("streaming", "Hello **world**", tool_calls=calls, steps=steps)
    )
    shown = visible(messages)
    assert "Hello *world* ▌" in sections(messages)
    for line in (
        "✅ search_docs",
        "⚙️ fetch_page — running",
        "❌ deploy — failed",
        "☑ plan · ☐ execute",
    ):
        assert line in shown


def test_streaming_without_text_is_thinking() -> None:
    assert "Thinking…" in visible(get_renderer("streaming")(view("streaming")))


def test_many_tool_calls_collapse_into_ten_context_elements() -> None:
    messages = get_renderer("streaming")(view("streaming", "x", tool_calls=tools(30, "running")))
    context = blocks_of(messages, "context")[0]
    assert len(context["elements"]) <= 10
    assert context["elements"][0]["text"] == "+22 earlier"
    assert context["elements"][-1]["text"] == "⚙️ tool_29 — running"


def test_done_has_no_cursor_and_summarises_tools() -> None:
    calls = {
        "a": ToolCallView("a", "search", status="done"),
        "b": ToolCallView("b", "search", status="done"),
        "c": ToolCallView("c", "fetch", status="failed"),
    }
    messages = get_renderer("done")(view("done", "Answer.", tool_calls=calls))
    assert sections(messages) == ["Answer."]
    assert "🔧 search x2, fetch (1 failed)" in visible(messages)


def test_a_live_answer_has_a_stop_button_only_where_slack_shows_none() -> None:
    live = get_renderer("streaming")(view("streaming", long_answer(9000), stoppable=True))
    assert_slack_accepts(live)
    (stop,) = [e for b in blocks_of(live, "actions") for e in b["elements"]]
    assert (stop["action_id"], stop["value"], stop["text"]["text"]) == (
        ACTION_STOP,
        "conv-1",
        "⏹ Stop",
    )
    assert stop in live[-1].blocks[-1]["elements"]  # under the latest text
    assert not blocks_of(get_renderer("streaming")(view("streaming", "Hi")), "actions")


def test_a_stopped_answer_keeps_its_text_marked_without_buttons() -> None:
    messages = get_renderer("done")(view("done", "Half an answ", stopped_by="U0BOB"))
    assert_slack_accepts(messages)
    assert sections(messages) == ["Half an answ"]
    assert "⏹ _Stopped by <@U0BOB>_" in visible(messages)
    assert not blocks_of(messages, "actions") and "Done." not in visible(messages)


# --- errored -------------------------------------------------------------------------------------


def test_errored_keeps_the_partial_answer_then_the_note_and_retry() -> None:
    error = ErrorView("stream_lost", "Lost the agent", "It stopped mid-answer.", retryable=True)
    messages = get_renderer("errored")(
        view("errored", "Partial *answer*", error=error, interrupted="the stream dropped")
    )
    assert_slack_accepts(messages)
    texts = sections(messages)
    assert texts[0] == "Partial _answer_"
    assert texts[1] == "⚠️ *Answer interrupted:* the stream dropped"
    assert texts[2] == "*Lost the agent*\nIt stopped mid-answer."
    [actions] = blocks_of(messages, "actions")
    [retry] = actions["elements"]
    assert (retry["action_id"], retry["value"], retry["text"]["text"]) == (
        ACTION_RETRY,
        "conv-1",
        "Retry",
    )


def test_errored_without_retry_when_not_retryable() -> None:
    error = ErrorView("agent_not_found", "No such agent", "Check AGENT_URL.", retryable=False)
    messages = get_renderer("errored")(view("errored", "Partial", error=error))
    assert blocks_of(messages, "actions") == []
    assert "⚠️ *Answer interrupted:* No such agent" in sections(messages)


def test_errored_with_nothing_said_shows_only_the_error() -> None:
    error = ErrorView("agent_unreachable", "Agent unreachable", retryable=True)
    messages = get_renderer("errored")(view("errored", error=error))
    assert sections(messages) == ["*Agent unreachable*"]
    assert len(blocks_of(messages, "actions")) == 1


# --- awaiting approval ---------------------------------------------------------------------------


def test_legacy_langgraph_interrupt_renders_its_form() -> None:
    interrupt = legacy_interrupt(expires_at="Wed 14:00 UTC")
    messages = get_renderer("awaiting_approval")(
        view("awaiting_approval", "I looked.", interrupts=[interrupt])
    )
    assert_slack_accepts(messages)
    assert len(messages) == 1
    assert "Approve scaling deployment web to 5 replicas?" in sections(messages)[1]

    replicas, comment = blocks_of(messages, "input")
    assert replicas["block_id"] == "field:replicas"
    select = replicas["element"]
    assert select["type"] == "static_select" and select["action_id"] == "value"
    assert [o["value"] for o in select["options"]] == ["3", "5", "8"]
    assert select["initial_option"]["value"] == "5"
    assert comment["block_id"] == "field:comment"
    assert comment["element"] == {
        "type": "plain_text_input",
        "action_id": "value",
        "multiline": True,
    }
    assert replicas["optional"] and comment["optional"]

    [actions] = blocks_of(messages, "actions")
    assert actions["block_id"] == f"approval:{interrupt.id}"
    approve, reject = actions["elements"]
    assert (approve["action_id"], approve["value"], approve["text"]["text"]) == (
        ACTION_APPROVE,
        interrupt.id,
        "Approve",
    )
    assert (reject["action_id"], reject["value"], reject["text"]["text"]) == (
        ACTION_REJECT,
        interrupt.id,
        "Reject",
    )
    assert "⏳ Expires Wed 14:00 UTC" in visible(messages)


def test_every_field_kind_gets_its_slack_element() -> None:
    messages = get_renderer("awaiting_approval")(
        view(
            "awaiting_approval",
            interrupts=[InterruptView(id="i", message="?", fields=every_field_kind())],
        )
    )
    assert_slack_accepts(messages)
    elements = {b["block_id"]: b["element"] for b in blocks_of(messages, "input")}
    assert elements["field:name"]["type"] == "plain_text_input"
    assert elements["field:name"]["initial_value"] == "web"
    assert elements["field:why"]["multiline"] is True
    assert elements["field:size"]["initial_option"]["value"] == "m"
    assert elements["field:zones"]["type"] == "multi_static_select"
    assert [o["value"] for o in elements["field:zones"]["initial_options"]] == ["a", "c"]
    assert elements["field:force"]["type"] == "radio_buttons"
    assert [o["value"] for o in elements["field:force"]["options"]] == ["true", "false"]
    assert elements["field:force"]["initial_option"]["value"] == "false"
    assert elements["field:count"] == {
        "type": "number_input",
        "action_id": "value",
        "is_decimal_allowed": False,
        "initial_value": "3",
    }
    assert elements["field:ratio"]["is_decimal_allowed"] is True
    assert elements["field:when"] == {
        "type": "datepicker",
        "action_id": "value",
        "initial_date": "2025-01-31",
    }
    inputs = {b["block_id"]: b for b in blocks_of(messages, "input")}
    assert inputs["field:name"]["optional"] is False
    assert inputs["field:why"]["hint"]["text"] == "Tell us"


def test_huge_tool_args_are_pretty_printed_and_truncated_with_a_marker() -> None:
    args = json.dumps({"names": [f"item-{i}" for i in range(5000)], "query": "a < b"})
    interrupt = InterruptView(id="i", message="Run it?", tool_name="bulk_delete", tool_args=args)
    messages = get_renderer("awaiting_approval")(view("awaiting_approval", interrupts=[interrupt]))
    assert_slack_accepts(messages)
    [tool] = [t for t in sections(messages) if "bulk_delete" in t]
    assert tool.startswith('Wants to run `bulk_delete`:\n```\n{\n  "names": [\n    "item-0",')
    assert tool.endswith("… (truncated)\n```")
    assert tool.count("```") == 2


def test_validation_error_and_long_labels_on_the_form() -> None:
    interrupt = legacy_interrupt(
        error="Replicas is required", approve_label="Yes, " + "scale " * 30
    )
    messages = get_renderer("awaiting_approval")(view("awaiting_approval", interrupts=[interrupt]))
    assert ":warning: *Replicas is required*" in sections(messages)
    approve = blocks_of(messages, "actions")[0]["elements"][0]
    assert len(approve["text"]["text"]) == 75 and approve["text"]["text"].endswith("…")


def test_two_forms_with_the_same_field_names_go_to_separate_messages() -> None:
    first, second = legacy_interrupt(), legacy_interrupt(id="other")
    messages = get_renderer("awaiting_approval")(
        view("awaiting_approval", interrupts=[first, second])
    )
    assert_slack_accepts(messages)
    assert len(messages) == 2
    for message in messages:  # each form's inputs share a message with its buttons
        kinds = [b["type"] for b in message.blocks]
        assert kinds.count("input") == 2 and kinds.count("actions") == 1


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("approved", "✅ Approved by <@U1> at 14:02 UTC"),
        ("rejected", "❌ Rejected by <@U1> at 14:02 UTC"),
        ("expired", "⌛ Expired"),
        ("cancelled", "🚫 Cancelled"),
        ("claimed", "⏳ Answered by <@U1> at 14:02 UTC, resuming…"),
    ],
)
def test_an_answered_interrupt_is_a_record_without_inputs_or_buttons(
    status: str, expected: str
) -> None:
    interrupt = legacy_interrupt(
        status=status,
        answered_by="U1",
        answered_at="14:02 UTC",
        answer={"replicas": "8", "comment": "ok <now>"},
    )
    messages = get_renderer("awaiting_approval")(
        view("awaiting_approval", "Text", interrupts=[interrupt])
    )
    assert_slack_accepts(messages)
    shown = visible(messages)
    assert expected in shown
    assert "• *Replicas:* 8\n• *Comment:* ok &lt;now&gt;" in shown
    assert blocks_of(messages, "actions") == [] and blocks_of(messages, "input") == []


# --- markdown ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("markdown", "mrkdwn"),
    [
        ("**bold** and __bold__", "*bold* and *bold*"),
        ("*italic* and _italic_", "_italic_ and _italic_"),
        ("***both***", "*_both_*"),
        ("~~gone~~", "~gone~"),
        ("[docs](https://x.io/a?b=1&c=2)", "<https://x.io/a?b=1&amp;c=2|docs>"),
        ("# Title", "*Title*"),
        ("### **Sub** title ###", "*Sub title*"),
        ("- one\n* two\n  - nested", "• one\n• two\n  • nested"),
        ("1. first\n2. second", "1. first\n2. second"),
        ("- [ ] todo\n- [x] done", "☐ todo\n☑ done"),
        ("a < b && c > d", "a &lt; b &amp;&amp; c &gt; d"),
        ("already &amp; &lt;escaped&gt;", "already &amp; &lt;escaped&gt;"),
        (
            "hi <@U123> in <#C1|general> <!here> <https://a.io|A & B>",
            "hi <@U123> in <#C1|general> <!here> <https://a.io|A &amp; B>",
        ),
        ("use `**x** < y` here", "use `**x** &lt; y` here"),
        ("```py\nif a < b:\n    **x**\n```", "```\nif a &lt; b:\n    **x**\n```"),
        ("~~~\ncode\n~~~", "```\ncode\n```"),
        ("```\nunclosed", "```\nunclosed\n```"),
        ("> quoted **b**", "> quoted *b*"),
        ("a\n\n---\n\nb", "a\n\n──────────\n\nb"),
        ("see https://x.io/__init__.py now", "see https://x.io/__init__.py now"),
        ("snake_case and 2 * 3 * 4", "snake_case and 2 * 3 * 4"),
        (
            "| Name | Qty |\n|---|--:|\n| **apple** | 3 |\n| kiwi | 12 |",
            "```\nName  | Qty\n------+----\napple | 3\nkiwi  | 12\n```",
        ),
    ],
)
def test_markdown_to_mrkdwn(markdown: str, mrkdwn: str) -> None:
    assert to_mrkdwn(markdown) == mrkdwn


def test_markdown_never_emits_raw_angle_brackets_outside_slack_tokens() -> None:
    converted = to_mrkdwn("x <script> `<b>` [l](https://a.io/<x>) <@U1>\n```\n<tag>\n```")
    assert re.sub(r"<@U1>|<https://a\.io/&lt;x&gt;\|l>", "", converted).count("<") == 0


@pytest.mark.parametrize("default", ["2025-13-45", "31/01/2025", 20250131, None])
def test_a_bad_date_default_is_not_offered_to_slack(default: Any) -> None:
    field = FormField("when", "When", "date", default=default)
    interrupt = InterruptView(id="i", message="?", fields=[field])
    messages = get_renderer("awaiting_approval")(view("awaiting_approval", interrupts=[interrupt]))
    assert blocks_of(messages, "input")[0]["element"] == {
        "type": "datepicker",
        "action_id": "value",
    }
