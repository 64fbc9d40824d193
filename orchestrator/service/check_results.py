"""One line of `orchestrator check`: what was checked, how it went, and the detail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# `warn` is shown but does not fail the check run.
Status = Literal["ok", "FAIL", "skip", "warn"]


@dataclass(frozen=True, slots=True)
class Check:
    status: Status
    what: str
    detail: str

    def line(self) -> str:
        return f"{self.status:<4}  {self.what}: {self.detail}"
