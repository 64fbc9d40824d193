"""The people of the sandbox workspace: who can write in the page, and how each one is shown."""

from __future__ import annotations

from dataclasses import dataclass

BOT_NAME = "Orchestrator"
BOT_COLOUR = "#4a154b"
_COLOURS = ("#2f7fd1", "#1d9b6c", "#c2572b", "#7b4fbf", "#b5367a", "#3b7f8c", "#8a6d1f")


@dataclass(frozen=True, slots=True)
class Person:
    id: str  # the Slack user id the page writes and clicks as
    name: str
    role: str  # what this person is for, shown in the switcher
    colour: str
    bot_id: str | None = None  # set for a bot sender: its messages carry `bot_id`

    def json(self) -> dict[str, str | bool]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "colour": self.colour,
            "is_bot": self.bot_id is not None,
        }


REQUESTER = Person("U0ALICE", "Alice Park", "asks the bot", _COLOURS[0])
APPROVER = Person("U0BOB", "Bob Ortiz", "an approver", _COLOURS[1])
BYSTANDER = Person("U0CAROL", "Carol Diaz", "not an approver", _COLOURS[2])
BOT_SENDER = Person("U0DEPLOYBOT", "Deploy Bot", "another bot", _COLOURS[3], bot_id="B0DEPLOY")
SANDBOX_PEOPLE = (REQUESTER, APPROVER, BYSTANDER, BOT_SENDER)


def people_for(configured_approvers: list[str] | None) -> list[Person]:
    """The sandbox's people. With a configuration of your own (`configured_approvers` not None),
    its approvers are added under their ids, and Bob is no longer assumed to be one."""
    if configured_approvers is None:
        return list(SANDBOX_PEOPLE)
    bob = Person(APPROVER.id, APPROVER.name, "another person", APPROVER.colour)
    people = [REQUESTER, bob, BYSTANDER, BOT_SENDER]
    known = {person.id for person in people}
    for number, user in enumerate(dict.fromkeys(configured_approvers)):
        if user in known or user[:1] not in ("U", "W"):
            continue
        colour = _COLOURS[(number + 4) % len(_COLOURS)]
        people.append(Person(user, user, "an approver in your configuration", colour))
        known.add(user)
    return people
