"""The API block's errors (issue 11). Messages say what was expected and what was found::

    KonturError
    └── ApiError                    the API block (kontur.api)
        ├── UserInputError          a bad user name, role, password or token name (exit 2)
        ├── UserStoreCorrupt        users.sqlite is not ours or does not open
        ├── UserExists              a second user of one name
        ├── UserUnknown             no such user (or token)
        ├── Unauthenticated         no, unknown, expired or disabled credentials (HTTP 401)
        └── OutboxClosed            the supervisor no longer takes what the API sends (503)

The HTTP layer turns each into a one-line ``{"detail": ...}`` with its status code; the CLI
prints ``kontur: error: ...`` and exits with ``exit_code``.
"""

from __future__ import annotations

from kontur.errors import KonturError

__all__ = [
    "ApiError",
    "OutboxClosed",
    "Unauthenticated",
    "UserExists",
    "UserInputError",
    "UserStoreCorrupt",
    "UserUnknown",
]


class ApiError(KonturError):
    """Root of the API block's errors."""

    exit_code = 1


class UserInputError(ApiError):
    """A user name, role, password or token name that does not fit its pattern."""

    exit_code = 2


class UserStoreCorrupt(ApiError):
    """``users.sqlite`` is not a kontur user store, or SQLite refuses it."""


class UserExists(ApiError):
    """A user (or a user's token) of that name exists already."""


class UserUnknown(ApiError):
    """No such user, or no such token of that user."""


class Unauthenticated(ApiError):
    """Credentials that do not authenticate anyone (now). ``actor`` is who they named, if known."""

    def __init__(self, message: str, actor: str = "anonymous") -> None:
        super().__init__(message)
        self.actor = actor


class OutboxClosed(ApiError):
    """The supervisor's end of the API's pipe is gone or not reading: nothing can be audited."""
