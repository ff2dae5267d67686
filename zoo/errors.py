"""Errors a user can act on. The CLI prints them as one line; ``--debug`` adds the traceback."""

from __future__ import annotations


class ZooError(Exception):
    """A failure with a message that says what is wrong and what to do.

    ``exit_code`` is the process status the CLI exits with.
    """

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        message = super().__str__()
        return f"{message} ({self.hint})" if self.hint else message


class NotFoundError(ZooError):
    """A name (model, engine, hub, instance) that does not exist; the message offers a match."""


class UsageError(ZooError):
    """A request that cannot be satisfied as asked (impossible combination of options)."""

    exit_code = 2
