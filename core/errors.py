"""The one base class of domain errors.

A service raises a subclass (`bots.exceptions.BotError`, ...) with a message written for the user;
the class says which HTTP status answers it when the error reaches the API (`core.api`), so the
API needs to know no app: 400 for a request the domain refuses, 409 for a state that does not
allow it now.
"""

from __future__ import annotations


class DomainError(Exception):
    """A command the domain refuses; the message is shown to the user."""

    # The HTTP status the API answers this error with (`core.api.exception_handler`).
    http_status: int = 400


class DomainConflict(DomainError):
    """The resource's current state does not allow the command (answered with 409)."""

    http_status = 409
