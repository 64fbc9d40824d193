"""Variables that look like settings but are none: a typo in `.env` or in the environment.

Every `ORCH_*` and `SLACK_*` name is checked against the names the settings read; one that is
not known is reported with the closest known name, since pydantic-settings ignores it silently
and the setting keeps its default.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from dotenv import dotenv_values
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

PREFIXES: Final = ("ORCH_", "SLACK_")
# Names of ours that are not settings: read by the test suite (README, "Set up").
OTHER_KNOWN: Final = frozenset({"ORCH_TEST_PG_ADMIN", "ORCH_SKIP_INTEROP", "ORCH_PEERS_CACHE"})


@dataclass(frozen=True, slots=True)
class UnknownVariable:
    name: str
    where: str  # "the environment" or the .env file's path
    closest: str | None

    def sentence(self) -> str:
        hint = f"; did you mean {self.closest}?" if self.closest else ""
        return f"unknown setting {self.name} in {self.where} is ignored{hint}"


def setting_names(settings: type[BaseSettings]) -> frozenset[str]:
    """Every variable name the settings class reads."""
    names: set[str] = set()
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(choice for choice in alias.choices if isinstance(choice, str))
        elif isinstance(alias, str):
            names.add(alias)
        else:
            names.add(name.upper())
    return frozenset(names)


def unknown_variables(
    known: Iterable[str], environ: Mapping[str, str], env_file: Path | None = Path(".env")
) -> list[UnknownVariable]:
    """The unknown `ORCH_*`/`SLACK_*` names of the environment and of `env_file`, if it exists."""
    known_names = sorted(set(known) | OTHER_KNOWN)
    sources: list[tuple[str, Iterable[str]]] = [("the environment", environ)]
    if env_file is not None and env_file.is_file():
        sources.append((str(env_file), dotenv_values(env_file)))
    found: list[UnknownVariable] = []
    for where, names in sources:
        for name in sorted(names):
            if name.upper().startswith(PREFIXES) and name.upper() not in known_names:
                closest = difflib.get_close_matches(name.upper(), known_names, n=1, cutoff=0.75)
                found.append(UnknownVariable(name, where, closest[0] if closest else None))
    return found
