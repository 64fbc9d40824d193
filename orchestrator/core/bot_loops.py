"""The loop guard for bot senders: how many runs bots started in a row in one thread.

Every `user_message` in a thread's history records whether a bot sent it (`detail.bot`). Runs
started by bots are counted back to the last message from a person; a person writing resets the
count. `bot_loop_stopped` marks that the thread was already told the bot stopped answering bots.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from persistence.models import Transition

STOPPED = "bot_loop_stopped"


@dataclass(frozen=True, slots=True)
class BotTurns:
    runs: int  # runs started by bots since a person last wrote
    told: bool  # the thread was already told that the bot stopped answering bots


def bot_turns(history: Sequence[Transition]) -> BotTurns:
    runs, told = 0, False
    for entry in reversed(history):
        if entry.trigger == STOPPED:
            told = True
        elif entry.trigger == "user_message":
            if not (entry.detail or {}).get("bot"):
                break
            runs += entry.from_state != entry.to_state  # started a run (a queued one did not yet)
    return BotTurns(runs, told)
