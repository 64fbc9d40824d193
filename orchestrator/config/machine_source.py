"""Which machine the service runs: the file named by ORCH_MACHINE, else the default machine
shipped inside the package (`machines/thread.yaml`, read with importlib.resources, so a
non-editable install has it too)."""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Final

from orchestrator.core.machine import MachineDefinition, MachineDefinitionError, parse_machine

BUILT_IN: Final = "thread.yaml (built in)"


def default_machine_text() -> str:
    return importlib.resources.files("machines").joinpath("thread.yaml").read_text("utf-8")


def machine_definition(path: Path | None) -> MachineDefinition:
    """The machine in `path` (from ORCH_MACHINE), or the built-in one when it is None."""
    if path is None:
        return parse_machine(default_machine_text(), Path(BUILT_IN))
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MachineDefinitionError(
            f"ORCH_MACHINE names {path}, which cannot be read: {exc.strerror or exc} "
            "(unset ORCH_MACHINE to run the built-in machine)"
        ) from exc
    return parse_machine(text, path)


def machine_label(path: Path | None) -> str:
    """How logs and checks name the machine."""
    return str(path) if path is not None else BUILT_IN
