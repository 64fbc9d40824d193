"""What a person does with a real AG-UI server in Slack, and what the server got in return.

Each flow drives the whole service over HTTP through the Slack emulator (`Harness`), against a
running peer (`PeerServer`); the peer's wire log says what it received and sent.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from typing import Any

import jsonschema

from orchestrator.sandbox.slack_emulator import StoredMessage, render_text
from renderers.common import ACTION_APPROVE, ACTION_REJECT, FIELD_ACTION_ID, field_block_id
from tests.harness import ALICE, SECRET, Harness, actions_of, find_with_action, until
from tests.interop.peers import PEERS_DIR, PeerServer

_spec = importlib.util.spec_from_file_location("peer_story", PEERS_DIR / "peer_story.py")
assert _spec is not None and _spec.loader is not None
story = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(story)

EDIT_LABEL = "Edit arguments"
DECISION_FIELDS = ("approved", "accepted", "confirmed")
WAIT = 60.0
APPROVED_TEXT = story.APPROVED.format(result=f"{story.RESULT_PREFIX}web-7 in prod")
EDITED_ARGS = {"pod": "web-7", "namespace": "staging"}
EDITED_TEXT = story.APPROVED.format(result=f"{story.RESULT_PREFIX}web-7 in staging")
# What a pause that advertises no responseSchema is answered with: a boolean decision.
DECISION_SCHEMA = {
    "type": "object",
    "properties": {"approved": {"type": "boolean"}, "confirmed": {"type": "boolean"}},
    "anyOf": [{"required": ["approved"]}, {"required": ["confirmed"]}],
}


@dataclass
class Pause:
    """A thread waiting for a decision, and where the peer's wire log stood when it began."""

    thread_ts: str
    since: int


@dataclass
class Answer:
    """How the server received the decision."""

    body: dict[str, Any]
    wire: str  # "resume" (RunAgentInput.resume), "command" (forwardedProps), "tool" (a message)
    status: str | None
    payload: Any


async def ask(harness: Harness, peer: PeerServer) -> Pause:
    """Mention the bot; the answer streams and the run pauses for a decision."""
    since = peer.mark()
    await harness.start(
        AGENT_URL=peer.url, ORCH_AGENT_FIRST_EVENT_TIMEOUT=WAIT, ORCH_AGENT_IDLE_TIMEOUT=WAIT
    )
    thread_ts = await harness.mention("please restart web-7 in prod")
    row = await harness.settle(thread_ts, wait=WAIT)
    assert row.state == "awaiting_approval", (
        f"the run ended {row.state!r} instead of asking:\n{harness.thread_text(thread_ts)}"
    )
    return Pause(thread_ts, since)


def form_of(harness: Harness, pause: Pause) -> StoredMessage:
    return find_with_action(harness.thread_messages(pause.thread_ts), ACTION_APPROVE)


def buttons(message: StoredMessage) -> dict[str, dict[str, Any]]:
    """Label -> button element, for every button of the message."""
    return {
        element["text"]["text"]: element
        for block in message.blocks
        if block.get("type") == "actions"
        for element in block.get("elements", [])
        if element.get("type") == "button"
    }


def field_ids(message: StoredMessage) -> set[str]:
    return {b.get("block_id", "") for b in message.blocks if b.get("type") == "input"}


def assert_paused_story(harness: Harness, pause: Pause, *, editable: bool) -> None:
    """The streamed sentence, then a form naming the tool, whose decision is the buttons'."""
    assert story.INTRO.strip() in harness.thread_text(pause.thread_ts)
    form = form_of(harness, pause)
    text = render_text(form)
    assert story.TOOL in text, text
    assert {ACTION_APPROVE, ACTION_REJECT} <= set(actions_of(form))
    shown = field_ids(form)
    for name in (*DECISION_FIELDS, "editedArgs", *story.ARGS):
        assert field_block_id(name) not in shown, f"{name!r} is shown as a form field"
    assert (EDIT_LABEL in buttons(form)) is editable


async def decide(
    harness: Harness, pause: Pause, action_id: str, *, reason: str | None = None
) -> None:
    """Click Approve or Reject (with a reason typed in the form's Reason field, if given)."""
    form = form_of(harness, pause)
    values: dict[str, Any] = {}
    if reason is not None:
        assert field_block_id("reason") in field_ids(form), "the form has no Reason field"
        values[field_block_id("reason")] = {
            FIELD_ACTION_ID: {"type": "plain_text_input", "value": reason}
        }
    row = await harness.row(pause.thread_ts)
    assert row is not None
    response = await harness.click(form, action_id, actions_of(form)[action_id], values=values)
    assert response.status_code == 200, response.text
    await harness.settle(pause.thread_ts, ("done",), wait=WAIT, min_version=row.version + 1)


async def open_edit(harness: Harness, pause: Pause) -> dict[str, Any]:
    """Click "Edit arguments"; the modal Slack opened."""
    form = form_of(harness, pause)
    button = buttons(form)[EDIT_LABEL]
    before = len(harness.slack.views_opened())
    response = await harness.click(form, button["action_id"], button.get("value", ""))
    assert response.status_code == 200, response.text
    await until(lambda: len(harness.slack.views_opened()) > before)
    return harness.slack.views_opened()[-1]


def json_input(view: dict[str, Any]) -> tuple[str, str, str]:
    """(block id, action id, initial value) of the modal's one text input."""
    (block,) = [b for b in view["blocks"] if b.get("type") == "input"]
    element = block["element"]
    assert element["type"] == "plain_text_input"
    return block["block_id"], element["action_id"], element.get("initial_value", "")


async def submit_edit(harness: Harness, view: dict[str, Any], text: str) -> Any:
    block_id, action_id, _ = json_input(view)
    payload = harness.slack.view_submission_payload(
        user=ALICE,
        callback_id=view["callback_id"],
        private_metadata=view["private_metadata"],
        state_values={block_id: {action_id: {"type": "plain_text_input", "value": text}}},
    )
    return await harness.slack.deliver_action(harness.events_url, SECRET, payload)


async def edit_and_approve(harness: Harness, pause: Pause, args: dict[str, Any]) -> None:
    """Edit the arguments in the modal (prefilled with the tool's) and submit: that approves."""
    row = await harness.row(pause.thread_ts)
    assert row is not None
    view = await open_edit(harness, pause)
    assert json.loads(json_input(view)[2]) == story.ARGS
    response = await submit_edit(harness, view, json.dumps(args))
    assert response.status_code == 200, response.text
    assert "errors" not in ((response.text and response.json()) or {}), response.text
    await harness.settle(pause.thread_ts, ("done",), wait=WAIT, min_version=row.version + 1)


# --- what the server received -------------------------------------------------------------


def requests(peer: PeerServer, pause: Pause) -> list[dict[str, Any]]:
    return [entry["body"] for entry in peer.entries(pause.since, "request")]


def answer_of(peer: PeerServer, pause: Pause) -> Answer:
    """The request that carried the decision (the last one), read as its server reads it."""
    body = requests(peer, pause)[-1]
    if body.get("resume"):
        (entry,) = body["resume"]
        return Answer(body, "resume", entry.get("status"), entry.get("payload"))
    command = (body.get("forwardedProps") or {}).get("command") or {}
    if "resume" in command:
        return Answer(body, "command", None, command["resume"])
    last = body["messages"][-1]
    assert last["role"] == "tool", f"no decision in the last request: {body}"
    return Answer(body, "tool", None, json.loads(last["content"]))


def advertised(peer: PeerServer, pause: Pause) -> list[dict[str, Any]]:
    """The interrupts the server sent: its outcome's, or its legacy `on_interrupt` values."""
    found: list[dict[str, Any]] = []
    for entry in peer.entries(pause.since, "event"):
        event = entry.get("event") or {}
        outcome = event.get("outcome") or {}
        if event.get("type") == "RUN_FINISHED" and outcome.get("type") == "interrupt":
            found.extend(outcome.get("interrupts") or [])
        if event.get("type") == "CUSTOM" and event.get("name") == "on_interrupt":
            value = event.get("value")
            found.append(json.loads(value) if isinstance(value, str) else value)
    return found


def assert_conforms(payload: Any, schema: dict[str, Any] | None) -> None:
    """The answer validates against what the interrupt advertised (or, with no schema, is a
    boolean decision)."""
    checked = schema or DECISION_SCHEMA
    jsonschema.validators.validator_for(checked).check_schema(checked)
    jsonschema.validate(payload, checked)


def schema_of(peer: PeerServer, pause: Pause) -> dict[str, Any] | None:
    interrupts = advertised(peer, pause)
    if not interrupts:
        return None
    return interrupts[0].get("responseSchema")


def tool_runs(peer: PeerServer, pause: Pause) -> list[dict[str, Any]]:
    return [entry["args"] for entry in peer.entries(pause.since, "tool")]


def thread_text(harness: Harness, pause: Pause) -> str:
    return harness.thread_text(pause.thread_ts)
