"""usergroups.users.list: the members of a user group."""

from __future__ import annotations

from typing import Any

from orchestrator.sandbox.slack_emulator.records import SlackApiFailure
from orchestrator.sandbox.slack_emulator.workspace import Workspace


class UsergroupMethods(Workspace):
    def _usergroup_users(self, params: dict[str, Any]) -> dict[str, Any]:
        group = params.get("usergroup")
        if group not in self.usergroups:
            raise SlackApiFailure("no_such_subteam")
        return {"users": list(self.usergroups[group])}
