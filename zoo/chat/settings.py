"""What each request sends: sampling parameters and the system prompt, with their origins.

One rule for every value: what the user set in the chat (``/set``) wins over the command line
(``--temperature``), which wins over the family's ``generation:`` defaults in its spec (the
model card's recommendation). ``/show`` prints each value with where it came from, and
``/unset`` goes back to the next one down.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from zoo.errors import UsageError

if TYPE_CHECKING:
    from zoo.catalog.model import GenerationDefaults

SPEC = "spec"
COMMAND_LINE = "command line"
CHAT = "/set"
ORIGINS = (CHAT, COMMAND_LINE, SPEC)  # first wins

Number = float | int


def _number(
    kind: type, low: float | None, high: float | None, *, open_low: bool = False
) -> Callable[[str], Number]:
    def parse(text: str) -> Number:
        try:
            value: Number = kind(text)
        except ValueError:
            raise UsageError(
                f"{text!r} is not {'an integer' if kind is int else 'a number'}"
            ) from None
        if not math.isfinite(value):
            raise UsageError(f"{text!r} is not a finite number")
        if low is not None and (value <= low if open_low else value < low):
            raise UsageError(
                f"{text} is too small (must be {'above' if open_low else 'at least'} {low:g})"
            )
        if high is not None and value > high:
            raise UsageError(f"{text} is too large (at most {high:g})")
        return value

    return parse


# The parameters zoo run sends, in the OpenAI API's names (``GenerationDefaults.options``),
# with what each accepts.
PARAMETERS: Mapping[str, Callable[[str], Number]] = {
    "temperature": _number(float, 0, None),
    "top_p": _number(float, 0, 1, open_low=True),
    "top_k": _number(int, 0, None),
    "min_p": _number(float, 0, 1),
    "repetition_penalty": _number(float, 0, None, open_low=True),
    "max_tokens": _number(int, 1, None),
    "seed": _number(int, None, None),
}
# Names users bring from Ollama and other tools.
ALIASES: Mapping[str, str] = {
    "num_predict": "max_tokens",
    "repeat_penalty": "repetition_penalty",
}


def parameter_name(word: str) -> str:
    """The parameter ``word`` names (``top-p``, ``TOP_P``, ``num_predict`` too)."""
    name = word.strip().lower().replace("-", "_")
    name = ALIASES.get(name, name)
    if name not in PARAMETERS:
        raise UsageError(
            f"no parameter {word!r}", hint="parameters: " + ", ".join(PARAMETERS) + ", system"
        )
    return name


@dataclass(frozen=True)
class Shown:
    """One value as ``/show`` lists it."""

    name: str
    value: str
    origin: str


class Settings:
    """The values of one chat, by origin; ``options()`` and ``system`` are what is sent."""

    def __init__(
        self,
        defaults: GenerationDefaults | None,
        *,
        options: Mapping[str, Number] | None = None,
        system: str | None = None,
    ) -> None:
        self._source = defaults.source if defaults else None
        self._values: dict[str, dict[str, Number]] = {
            SPEC: dict(defaults.options()) if defaults else {},
            COMMAND_LINE: {parameter_name(k): v for k, v in (options or {}).items()},
            CHAT: {},
        }
        self._system: dict[str, str | None] = {}
        if defaults and defaults.system_prompt:
            self._system[SPEC] = defaults.system_prompt
        if system is not None:
            self._system[COMMAND_LINE] = system  # "" is no system prompt at all

    def options(self) -> dict[str, Number]:
        """The parameters a request sends, each from the first origin that sets it."""
        merged: dict[str, Number] = {}
        for origin in reversed(ORIGINS):
            merged.update(self._values[origin])
        return {name: merged[name] for name in PARAMETERS if name in merged}

    @property
    def system(self) -> str | None:
        """The system prompt a request sends (None: no system message)."""
        for origin in ORIGINS:
            if origin in self._system:
                return self._system[origin] or None
        return None

    def set(self, word: str, text: str) -> str:
        """``/set NAME VALUE``: the parameter's name as it is now set (UsageError if invalid)."""
        if word.strip().lower() == "system":
            self.set_system(text)
            return "system"
        name = parameter_name(word)
        if not text.strip():
            raise UsageError(f"/set {name} needs a value")
        self._values[CHAT][name] = PARAMETERS[name](text.strip())
        return name

    def set_system(self, text: str) -> None:
        self._system[CHAT] = text.strip()

    def unset(self, word: str) -> str:
        """``/unset NAME``: back to the command line's value, or the spec's."""
        if word.strip().lower() == "system":
            self._system.pop(CHAT, None)
            return "system"
        name = parameter_name(word)
        self._values[CHAT].pop(name, None)
        return name

    def shown(self) -> list[Shown]:
        """Every value in effect (and the parameters left to the server), with its origin."""
        rows: list[Shown] = []
        for name in PARAMETERS:
            origin = next((o for o in ORIGINS if name in self._values[o]), None)
            if origin is None:
                rows.append(Shown(name, "-", "the server's default"))
            else:
                rows.append(Shown(name, f"{self._values[origin][name]:g}", self._origin(origin)))
        origin = next((o for o in ORIGINS if o in self._system), None)
        system = self.system
        if origin is None:
            rows.append(Shown("system", "(none)", "no system prompt"))
        else:
            rows.append(Shown("system", system if system else "(none)", self._origin(origin)))
        return rows

    def _origin(self, origin: str) -> str:
        if origin == SPEC:
            return f"model spec ({self._source})" if self._source else "model spec"
        if origin == CHAT:
            return "set in this chat"
        return origin
