"""One conversation: the messages so far and the settings each request is sent with."""

from __future__ import annotations

from dataclasses import dataclass, field

from zoo.chat.settings import Settings


@dataclass
class Session:
    """The chat's state; ``messages(prompt)`` is what the next request sends."""

    settings: Settings
    # What /show says about the model and its endpoint: (label, value) rows.
    about: list[tuple[str, str]] = field(default_factory=list)
    history: list[dict[str, str]] = field(default_factory=list)

    def messages(self, prompt: str) -> list[dict[str, str]]:
        system = self.settings.system
        head = [{"role": "system", "content": system}] if system else []
        return [*head, *self.history, {"role": "user", "content": prompt}]

    def answered(self, prompt: str, answer: str) -> None:
        """Keep a finished exchange (a stopped one is not kept: the next turn starts afresh)."""
        self.history += [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": answer},
        ]

    def clear(self) -> None:
        self.history.clear()
