"""What the store raises: a database it cannot use, a lost race, a delivery taken before, a run
lease another process took."""

from __future__ import annotations

from sqlalchemy.exc import OperationalError


class StoreError(RuntimeError):
    """The database cannot be used; the message says why and what to do."""


# What a store call raises when the database refuses work: locked, full, read-only or gone.
DatabaseFailure = OperationalError


class StaleThread(RuntimeError):
    """The thread changed since it was read (another replica or task won the race)."""


class AlreadyClaimed(RuntimeError):
    """This Slack delivery was taken before (a retry, or the same message's other event)."""


class AnswerTaken(RuntimeError):
    """The answer was regenerated already, or a newer run replaced it."""


class LeaseLost(RuntimeError):
    """This process no longer holds the thread's run lease: another process took the run over
    (or ended it), so this one writes nothing more for it. The transaction was rolled back."""
