"""The machine loader refuses broken files, naming the file, the key and the valid choices."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from orchestrator.config.machine_source import BUILT_IN, default_machine_text, machine_definition
from orchestrator.core.machine import (
    InvalidTrigger,
    MachineDefinitionError,
    ThreadMachine,
    load_machine,
    mermaid,
)

DEFAULT_MACHINE = Path(__file__).resolve().parent.parent / "machines" / "thread.yaml"
GOOD = DEFAULT_MACHINE.read_text()


def _variant(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load(GOOD)
    edit(data)
    path = tmp_path / "machine.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_default_machine_loads() -> None:
    definition = load_machine(DEFAULT_MACHINE)
    assert set(definition.states) == {"idle", "streaming", "awaiting_approval", "errored", "done"}
    assert definition.initial == "idle"


def test_unknown_state_names_key_and_choices(tmp_path: Path) -> None:
    path = _variant(tmp_path, lambda d: d["transitions"][0].update(dest="finished"))
    with pytest.raises(MachineDefinitionError) as err:
        load_machine(path)
    message = str(err.value)
    assert str(path) in message
    assert "transitions[0].dest" in message
    assert "'finished'" in message
    assert "awaiting_approval, done, errored, idle, streaming" in message


def test_unknown_action(tmp_path: Path) -> None:
    path = _variant(tmp_path, lambda d: d["transitions"][0].update(after="launch_rockets"))
    with pytest.raises(
        MachineDefinitionError, match=r"transitions\[0\]\.after.*launch_rockets.*valid: "
    ):
        load_machine(path)


def test_unknown_condition(tmp_path: Path) -> None:
    path = _variant(tmp_path, lambda d: d["transitions"][0].update(conditions="is_friday"))
    with pytest.raises(
        MachineDefinitionError, match="unknown condition 'is_friday'.*all_interrupts_answered"
    ):
        load_machine(path)


def test_unreachable_state(tmp_path: Path) -> None:
    def add_orphan(d: dict) -> None:
        d["states"]["archived"] = {"renderer": "done", "session": "closed"}

    path = _variant(tmp_path, add_orphan)
    with pytest.raises(MachineDefinitionError, match=r"states\.archived.*unreachable"):
        load_machine(path)


def test_missing_renderer(tmp_path: Path) -> None:
    path = _variant(tmp_path, lambda d: d["states"]["done"].update(renderer="fancy"))
    with pytest.raises(
        MachineDefinitionError, match=r"states\.done\.renderer.*'fancy'.*valid: awaiting_approval"
    ):
        load_machine(path)


def test_each_state_names_its_agent_session_status() -> None:
    definition = load_machine(DEFAULT_MACHINE)
    sessions = {state: definition.session_of(state) for state in definition.states}
    assert sessions == {
        "idle": "active",
        "streaming": "processing",
        "awaiting_approval": "suspended",
        "errored": "active",
        "done": "active",
    }
    assert "    streaming: session processing" in mermaid(definition)


@pytest.mark.parametrize("session", [None, "busy"])
def test_a_state_without_a_known_session_status_is_refused(
    tmp_path: Path, session: str | None
) -> None:
    path = _variant(tmp_path, lambda d: d["states"]["done"].update(session=session))
    with pytest.raises(MachineDefinitionError) as err:
        load_machine(path)
    message = str(err.value)
    assert str(path) in message and "states.done.session (line " in message
    assert f"unknown session status {session!r}" in message
    assert "valid: active, closed, processing, suspended" in message


def test_stop_is_required_and_ends_a_stream_answerable(tmp_path: Path) -> None:
    def drop_stop(d: dict) -> None:
        d["transitions"] = [t for t in d["transitions"] if t["trigger"] != "stop"]

    with pytest.raises(MachineDefinitionError, match="no transition for trigger.*stop"):
        load_machine(_variant(tmp_path, drop_stop))
    machine = ThreadMachine(load_machine(DEFAULT_MACHINE))
    fired = machine.fire("streaming", "stop")
    assert (fired.dest, fired.effects) == ("done", ["run_next_queued"])
    assert machine.allows(fired.dest, "user_message")
    for state in ("idle", "awaiting_approval", "errored", "done"):
        with pytest.raises(InvalidTrigger):
            machine.fire(state, "stop")


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: thread\ninitial: idle\nstates: [idle\n")
    with pytest.raises(MachineDefinitionError, match=r"broken.yaml: YAML syntax error at line \d+"):
        load_machine(path)


def test_a_trigger_the_engine_needs_cannot_be_dropped(tmp_path: Path) -> None:
    def drop_retry(d: dict) -> None:
        d["transitions"] = [t for t in d["transitions"] if t["trigger"] != "retry"]

    with pytest.raises(MachineDefinitionError, match="no transition for trigger.*retry"):
        load_machine(_variant(tmp_path, drop_retry))


def test_regenerate_is_required_and_runs_again_from_done(tmp_path: Path) -> None:
    def drop_regenerate(d: dict) -> None:
        d["transitions"] = [t for t in d["transitions"] if t["trigger"] != "regenerate"]

    with pytest.raises(MachineDefinitionError, match="no transition for trigger.*regenerate"):
        load_machine(_variant(tmp_path, drop_regenerate))
    machine = ThreadMachine(load_machine(DEFAULT_MACHINE))
    fired = machine.fire("done", "regenerate")
    assert (fired.dest, fired.effects) == ("streaming", ["start_run"])
    for state in ("idle", "streaming", "awaiting_approval", "errored"):
        with pytest.raises(InvalidTrigger):
            machine.fire(state, "regenerate")


def test_firing_follows_the_yaml() -> None:
    machine = ThreadMachine(load_machine(DEFAULT_MACHINE))
    fired = machine.fire("idle", "user_message")
    assert (fired.dest, fired.effects) == ("streaming", ["start_run"])
    assert machine.fire("streaming", "user_message").effects == ["queue_message"]
    waiting = machine.fire("awaiting_approval", "approval_submitted", {"pending_interrupts": 1})
    assert waiting.dest == "awaiting_approval" and waiting.effects == []
    resumed = machine.fire("awaiting_approval", "approval_submitted", {"pending_interrupts": 0})
    assert resumed.dest == "streaming" and resumed.effects == ["resume_run"]
    with pytest.raises(InvalidTrigger):
        machine.fire("idle", "run_finished")


def test_each_firing_starts_from_its_own_row_whatever_came_before() -> None:
    """One model serves every trigger: a firing keeps nothing of the one before it (state,
    facts, effects), refused or not, and the results it gave stay as they were."""
    machine = ThreadMachine(load_machine(DEFAULT_MACHINE))
    resumed = machine.fire("awaiting_approval", "approval_submitted", {"pending_interrupts": 0})
    with pytest.raises(InvalidTrigger):
        machine.fire("streaming", "regenerate")
    waiting = machine.fire("awaiting_approval", "approval_submitted", {"pending_interrupts": 2})
    assert (waiting.dest, waiting.effects) == ("awaiting_approval", [])
    answered = machine.fire("awaiting_approval", "approval_rejected")  # no facts: none pending
    assert (answered.dest, answered.effects) == ("streaming", ["resume_run"])
    assert (resumed.source, resumed.dest, resumed.effects) == (
        "awaiting_approval",
        "streaming",
        ["resume_run"],
    )
    with pytest.raises(ValueError, match="gone"):
        machine.fire("gone", "user_message")  # a state the machine does not have
    assert machine.fire("idle", "user_message").effects == ["start_run"]


def test_mermaid_lists_every_transition() -> None:
    text = mermaid(load_machine(DEFAULT_MACHINE))
    assert text.startswith("stateDiagram-v2\n    [*] --> idle")
    assert (
        "awaiting_approval --> streaming: approval_submitted [all_interrupts_answered] / resume_run"
        in text
    )


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_validate_and_graph(tmp_path: Path) -> None:
    ok = _cli("machine", "validate", str(DEFAULT_MACHINE))
    assert ok.returncode == 0 and "ok (5 states" in ok.stdout
    graph = _cli("machine", "graph", str(DEFAULT_MACHINE))
    assert graph.returncode == 0 and "stateDiagram-v2" in graph.stdout
    built_in = _cli("machine", "validate")
    assert built_in.returncode == 0 and f"{BUILT_IN}: ok (5 states" in built_in.stdout
    bad = _variant(tmp_path, lambda d: d["transitions"][1].update(source="nowhere"))
    refused = _cli("machine", "validate", str(bad))
    assert refused.returncode == 2
    assert "transitions[1].source" in refused.stderr and "'nowhere'" in refused.stderr


def test_the_built_in_machine_is_the_one_in_machines_and_orch_machine_wins(tmp_path: Path) -> None:
    assert default_machine_text() == GOOD
    assert machine_definition(None).states == load_machine(DEFAULT_MACHINE).states
    renamed = _variant(tmp_path, lambda d: d.update(name="mine"))
    assert machine_definition(renamed).name == "mine"


def test_an_unreadable_orch_machine_names_the_variable(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(MachineDefinitionError, match="ORCH_MACHINE names .*nowhere.yaml, which"):
        machine_definition(missing)
