"""What the store raises: a database it cannot use, a lost race, a delivery taken before, a run
lease another process took."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout


class StoreError(RuntimeError):
    """The database cannot be used; the message says why and what to do."""


# What a store call raises when the database refuses work or cannot be had in time: whatever
# the driver raised (locked, full, read-only, gone, a broken connection), and no connection
# free within ORCH_DATABASE_POOL_TIMEOUT (SQLAlchemy's pool TimeoutError, which is not a
# driver error: under load it is the likeliest failure of all). Callers catch the tuple.
DatabaseFailure = (DBAPIError, PoolTimeout)


class StaleThread(RuntimeError):
    """The thread changed since it was read (another replica or task won the race)."""


class AlreadyClaimed(RuntimeError):
    """This Slack delivery was taken before (a retry, or the same message's other event)."""


class AnswerTaken(RuntimeError):
    """The answer was regenerated already, or a newer run replaced it."""


class LeaseLost(RuntimeError):
    """This process no longer holds the thread's run lease: another process took the run over
    (or ended it), so this one writes nothing more for it. The transaction was rolled back."""
