"""Errors a user can act on. The CLI prints them as one line; ``--debug`` adds the traceback.

Each class has a stable ``code`` that ``--json`` commands report (``{"error": {"code": ...}}``)
so scripts can branch on it without parsing the message. A subclass that does not set one gets
its class name in snake case without the ``Error`` suffix (``HubUnreachableError`` ->
``hub_unreachable``), so plugins' errors have a code too; set ``code`` explicitly to keep it
when renaming the class.
"""

from __future__ import annotations

from typing import ClassVar


class ZooError(Exception):
    """A failure with a message that says what is wrong and what to do.

    ``exit_code`` is the process status the CLI exits with (1; usage errors 2).
    """

    exit_code = 1
    code: ClassVar[str] = "error"

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "code" not in cls.__dict__:
            cls.code = code_from_class_name(cls.__name__)

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        message = super().__str__()
        return f"{message} ({self.hint})" if self.hint else message

    def to_json(self) -> dict[str, str | None]:
        """``code``, ``message`` (without the hint) and ``hint``, as ``--json`` reports them."""
        # Exception.__str__, not str(self): the hint is its own field, not part of the message.
        # getattr: a subclass whose __init__ skips ours has no hint attribute.
        return {
            "code": self.code,
            "message": Exception.__str__(self),
            "hint": getattr(self, "hint", None),
        }


def code_from_class_name(name: str) -> str:
    """``HubUnreachableError`` -> ``hub_unreachable``; ``HTTPServerError`` -> ``http_server``."""
    import re

    if name.endswith("Error") and name != "Error":
        name = name[: -len("Error")]
    # A word starts at a capital after a lower-case letter or digit, or at the last capital of
    # an acronym that is followed by a word (HTTPServer -> HTTP, Server).
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


class NotFoundError(ZooError):
    """A name (model, engine, hub, instance) that does not exist; the message offers a match."""

    code = "not_found"


class UsageError(ZooError):
    """A request that cannot be satisfied as asked (impossible combination of options)."""

    exit_code = 2
    code = "usage"
