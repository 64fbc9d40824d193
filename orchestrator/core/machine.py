"""Declarative thread machines: load and validate `machines/*.yaml`, fire triggers over rows.

The YAML is the single source of truth for states, triggers and transitions; code offers named
actions and conditions. `transitions` is used as a rule engine over persisted rows: its one
model is set to a row's state and facts, triggered, and read back; no thread is held between.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from transitions import Machine
from transitions.core import MachineError as _FsmError

# Actions the engine performs after a transition is stored (orchestrator/engine/actions.py).
ACTIONS: frozenset[str] = frozenset(
    {"start_run", "queue_message", "point_to_form", "run_next_queued", "post_forms", "resume_run"}
)
# Conditions read facts the engine loads from the store before firing.
CONDITIONS: dict[str, Callable[[Mapping[str, Any]], bool]] = {
    "all_interrupts_answered": lambda facts: facts.get("pending_interrupts", 0) == 0,
}
# Triggers the engine fires; a machine must define each one from some state.
REQUIRED_TRIGGERS: frozenset[str] = frozenset(
    {
        "user_message",
        "retry",
        "regenerate",
        "run_started",
        "run_finished",
        "interrupt",
        "run_error",
        "stream_lost",
        "approval_submitted",
        "approval_rejected",
        "approval_expired",
        "resume_failed",
        "stop",
    }
)
# What Slack's agent session of a thread says in each state (`agents.sessions.setStatus`).
SESSION_STATUSES: frozenset[str] = frozenset({"processing", "suspended", "active", "closed"})
# States the engine relies on by name.
REQUIRED_STATES: frozenset[str] = frozenset(
    {"idle", "streaming", "awaiting_approval", "errored", "done"}
)


class MachineDefinitionError(ValueError):
    """A machine file that cannot be used; the message names the file, the key and the choices."""


class InvalidTrigger(Exception):
    """The trigger is not allowed from the thread's current state."""

    def __init__(self, state: str, trigger: str) -> None:
        super().__init__(f"trigger {trigger!r} is not allowed in state {state!r}")
        self.state = state
        self.trigger = trigger


@dataclass(frozen=True, slots=True)
class TransitionDef:
    trigger: str
    source: tuple[str, ...]
    dest: str | None  # None: stay in the source state
    conditions: tuple[str, ...] = ()
    after: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MachineDefinition:
    name: str
    initial: str
    states: Mapping[str, Mapping[str, Any]]
    transitions: tuple[TransitionDef, ...]
    path: Path | None = None

    def renderer_of(self, state: str) -> str:
        return str(self.states[state]["renderer"])

    def session_of(self, state: str) -> str:
        """The Slack agent session status a thread in `state` shows."""
        return str(self.states[state]["session"])


@dataclass(slots=True)
class Fired:
    """The outcome of one trigger: where the thread was, where it is, what to do next."""

    trigger: str
    source: str
    dest: str
    effects: list[str] = field(default_factory=list)


# --- loading -------------------------------------------------------------------------------


def load_machine(
    path: str | Path, renderers: Mapping[str, object] | None = None
) -> MachineDefinition:
    """Read and validate a machine file. Raises MachineDefinitionError with a precise message."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MachineDefinitionError(f"{path}: cannot read machine file: {exc.strerror}") from exc
    return parse_machine(text, path, renderers)


def parse_machine(
    text: str, path: Path | None = None, renderers: Mapping[str, object] | None = None
) -> MachineDefinition:
    where = str(path) if path else "<machine>"
    try:
        raw, root = _load_with_nodes(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise MachineDefinitionError(f"{where}: YAML syntax error{at}: {problem}") from exc
    if renderers is None:
        from renderers import RENDERERS

        renderers = RENDERERS
    return _Validator(where, raw, root, renderers).definition()


# libyaml when installed (the wheels ship it): the pure-Python parser costs ~60 ms per start.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_with_nodes(text: str) -> tuple[Any, yaml.Node | None]:
    """The document and its node tree (whose marks give line numbers), parsed once."""
    loader = _SafeLoader(text)
    try:
        root = loader.get_single_node()
        return (loader.construct_document(root) if root is not None else None), root
    finally:
        loader.dispose()


class _Validator:
    def __init__(self, where: str, raw: Any, root: yaml.Node | None, renderers: Mapping) -> None:
        self.where = where
        self.raw = raw
        self.root = root
        self.renderers = renderers

    def fail(self, key_path: tuple[str | int, ...], message: str) -> MachineDefinitionError:
        line = _line_of(self.root, key_path)
        at = f" (line {line})" if line else ""
        key = _format_path(key_path)
        return MachineDefinitionError(f"{self.where}: {key}{at}: {message}")

    def definition(self) -> MachineDefinition:
        if not isinstance(self.raw, dict):
            raise self.fail((), "a machine file must be a mapping with states and transitions")
        unknown = set(self.raw) - {"name", "initial", "states", "transitions"}
        if unknown:
            raise self.fail(
                (sorted(unknown)[0],),
                "unknown key; valid keys: name, initial, states, transitions",
            )
        states = self.states()
        initial = self.raw.get("initial")
        if initial not in states:
            raise self.fail(("initial",), f"unknown state {initial!r}; valid: {_choices(states)}")
        transitions = tuple(self.transition(i, t, states) for i, t in enumerate(self._list()))
        self.check_required(states, transitions)
        self.check_reachable(initial, states, transitions)
        return MachineDefinition(
            name=str(self.raw.get("name", "thread")),
            initial=initial,
            states=states,
            transitions=transitions,
        )

    def states(self) -> dict[str, dict[str, Any]]:
        states = self.raw.get("states")
        if not isinstance(states, dict) or not states:
            raise self.fail(("states",), "must map each state name to its settings")
        result: dict[str, dict[str, Any]] = {}
        for name, spec in states.items():
            spec = spec or {}
            if not isinstance(spec, dict):
                raise self.fail(("states", name), "must be a mapping such as {renderer: done}")
            renderer = spec.get("renderer")
            if renderer not in self.renderers:
                raise self.fail(
                    ("states", name, "renderer"),
                    f"unknown renderer {renderer!r}; valid: {_choices(self.renderers)}",
                )
            session = spec.get("session")
            if session not in SESSION_STATUSES:
                raise self.fail(
                    ("states", name, "session"),
                    f"unknown session status {session!r}; valid: {_choices(SESSION_STATUSES)}",
                )
            result[str(name)] = dict(spec)
        return result

    def _list(self) -> list[Any]:
        transitions = self.raw.get("transitions")
        if not isinstance(transitions, list) or not transitions:
            raise self.fail(("transitions",), "must be a list of {trigger, source, dest}")
        return transitions

    def transition(self, i: int, spec: Any, states: Mapping[str, Any]) -> TransitionDef:
        here: tuple[str | int, ...] = ("transitions", i)
        if not isinstance(spec, dict):
            raise self.fail(here, "must be a mapping with trigger, source and dest")
        unknown = set(spec) - {"trigger", "source", "dest", "conditions", "after"}
        if unknown:
            raise self.fail(
                (*here, sorted(unknown)[0]),
                "unknown key; valid keys: trigger, source, dest, conditions, after",
            )
        trigger = spec.get("trigger")
        if not isinstance(trigger, str) or not trigger:
            raise self.fail((*here, "trigger"), "a trigger name is required")
        if trigger not in REQUIRED_TRIGGERS:
            raise self.fail(
                (*here, "trigger"),
                f"unknown trigger {trigger!r}; valid: {_choices(REQUIRED_TRIGGERS)}",
            )
        sources = _names(spec.get("source"))
        if not sources:
            raise self.fail(
                (*here, "source"), f"a source state is required; valid: {_choices(states)}"
            )
        for source in sources:
            if source not in states:
                raise self.fail(
                    (*here, "source"), f"unknown state {source!r}; valid: {_choices(states)}"
                )
        dest = spec.get("dest")
        if dest is not None and dest not in states:
            raise self.fail((*here, "dest"), f"unknown state {dest!r}; valid: {_choices(states)}")
        conditions = _names(spec.get("conditions"))
        for name in conditions:
            if name not in CONDITIONS:
                raise self.fail(
                    (*here, "conditions"),
                    f"unknown condition {name!r}; valid: {_choices(CONDITIONS)}",
                )
        after = _names(spec.get("after"))
        for name in after:
            if name not in ACTIONS:
                raise self.fail(
                    (*here, "after"), f"unknown action {name!r}; valid: {_choices(ACTIONS)}"
                )
        return TransitionDef(trigger, sources, dest, conditions, after)

    def check_required(
        self, states: Mapping[str, Any], transitions: tuple[TransitionDef, ...]
    ) -> None:
        missing_states = REQUIRED_STATES - set(states)
        if missing_states:
            raise self.fail(
                ("states",), f"missing state(s) the engine uses: {_choices(missing_states)}"
            )
        missing = REQUIRED_TRIGGERS - {t.trigger for t in transitions}
        if missing:
            raise self.fail(("transitions",), f"no transition for trigger(s) {_choices(missing)}")

    def check_reachable(
        self, initial: str, states: Mapping[str, Any], transitions: tuple[TransitionDef, ...]
    ) -> None:
        reached = {initial}
        frontier = [initial]
        while frontier:
            state = frontier.pop()
            for t in transitions:
                if state in t.source and t.dest and t.dest not in reached:
                    reached.add(t.dest)
                    frontier.append(t.dest)
        for name in states:
            if name not in reached:
                raise self.fail(
                    ("states", name),
                    f"unreachable state: no transition leads to it from {initial!r}",
                )


def _names(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return (repr(value),)


def _choices(names: Any) -> str:
    return ", ".join(sorted(str(n) for n in names))


def _format_path(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _line_of(node: yaml.Node | None, path: tuple[str | int, ...]) -> int | None:
    """The 1-based line of the value at `path` in the composed YAML, for error messages."""
    for part in path:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            node = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            node = node.value[part] if part < len(node.value) else None
        else:
            return None
    return node.start_mark.line + 1 if node is not None else None


# --- running -------------------------------------------------------------------------------


@dataclass(eq=False)  # compared by identity, as transitions keeps its models
class _Row:
    """The model a trigger runs on: the row's state plus the facts conditions read."""

    facts: Mapping[str, Any] = field(default_factory=dict)
    effects: list[str] = field(default_factory=list)
    state: str = ""


class ThreadMachine:
    """Fires triggers for persisted threads. Holds no thread between calls."""

    def __init__(self, definition: MachineDefinition) -> None:
        self.definition = definition
        self._machine = Machine(
            model=None,
            states=list(definition.states),
            transitions=[self._compile(t) for t in definition.transitions],
            initial=definition.initial,
            auto_transitions=False,
            send_event=True,
        )
        # `fire` is synchronous: one model serves every trigger (`add_model` is dear per fire).
        self._row = _Row()
        self._machine.add_model(self._row, initial=definition.initial)

    @staticmethod
    def _compile(t: TransitionDef) -> dict[str, Any]:
        return {
            "trigger": t.trigger,
            "source": list(t.source),
            "dest": t.dest,
            "conditions": [_condition(name) for name in t.conditions],
            "after": [_action(name) for name in t.after],
        }

    def fire(self, state: str, trigger: str, facts: Mapping[str, Any] | None = None) -> Fired:
        """Run `trigger` from `state`; raises InvalidTrigger where the machine does not allow it."""
        model = self._row
        model.facts, model.effects = facts or {}, []
        self._machine.set_state(state, model=model)  # ValueError: a state the machine lacks
        try:
            model.trigger(trigger)  # type: ignore[attr-defined]
        except (_FsmError, AttributeError) as exc:
            raise InvalidTrigger(state, trigger) from exc
        return Fired(trigger=trigger, source=state, dest=model.state, effects=model.effects)

    def allows(self, state: str, trigger: str) -> bool:
        return any(state in t.source and t.trigger == trigger for t in self.definition.transitions)


def _condition(name: str) -> Callable[[Any], bool]:
    check = CONDITIONS[name]
    return lambda event: check(event.model.facts)


def _action(name: str) -> Callable[[Any], None]:
    return lambda event: event.model.effects.append(name)


def mermaid(definition: MachineDefinition) -> str:
    """The machine as a Mermaid state diagram."""
    lines = ["stateDiagram-v2", f"    [*] --> {definition.initial}"]
    for state in definition.states:
        lines.append(f"    {state}: session {definition.session_of(state)}")
    for t in definition.transitions:
        label = t.trigger
        if t.conditions:
            label += f" [{', '.join(t.conditions)}]"
        if t.after:
            label += f" / {', '.join(t.after)}"
        for source in t.source:
            lines.append(f"    {source} --> {t.dest or source}: {label}")
    return "\n".join(lines) + "\n"
