"""The chat's slash commands, as ``ollama run`` spells them: ``/bye``, ``/clear``,
``/system``, ``/set``, ``/unset``, ``/show``, ``/?``.

``run_command`` changes the session and says what to print; it reads no terminal, so every
command is tested without one. A bad value is a ``UsageError``, printed as one line and the
chat goes on.
"""

from __future__ import annotations

from dataclasses import dataclass

from zoo.chat.session import Session
from zoo.chat.settings import PARAMETERS
from zoo.errors import UsageError

MULTILINE = '"""'

HELP = f"""Available commands:
  /set PARAMETER VALUE   Set a parameter for this chat: {", ".join(PARAMETERS)}
  /set system TEXT       Set the system prompt (also: /system TEXT)
  /unset PARAMETER       Back to the command line's or the model spec's value
  /show                  Show the model, the parameters in effect and where they come from
  /clear                 Forget the conversation so far (the system prompt stays)
  /bye                   Leave (also: Ctrl-D)
  /?, /help              This help

Start and end a message with {MULTILINE} to write several lines.
Ctrl-C stops the answer being written."""


@dataclass(frozen=True)
class Reply:
    """What a command prints, and whether the chat ends."""

    text: str = ""
    leave: bool = False


def is_command(line: str) -> bool:
    return line.lstrip().startswith("/")


def run_command(line: str, session: Session) -> Reply:
    word, _, rest = line.strip().partition(" ")
    word = word.lower()
    rest = rest.strip()
    if word in ("/bye", "/exit", "/quit"):
        return Reply(leave=True)
    if word in ("/?", "/help"):
        return Reply(HELP)
    if word == "/clear":
        session.clear()
        return Reply("Cleared the conversation.")
    if word == "/system":
        if not rest:
            return Reply(f"System prompt: {session.settings.system or '(none)'}")
        session.settings.set_system(rest)
        return Reply("Set the system prompt.")
    if word == "/set":
        name, _, value = rest.partition(" ")
        if not name:
            raise UsageError("/set needs a parameter and a value, e.g. /set temperature 0")
        shown = session.settings.set(name, value)
        if shown == "system":
            return Reply("Set the system prompt.")
        return Reply(f"Set {shown} to {session.settings.options()[shown]:g}.")
    if word == "/unset":
        if not rest:
            raise UsageError("/unset needs a parameter, e.g. /unset temperature")
        name = session.settings.unset(rest)
        return Reply(f"Unset {name}; now: {_value(session, name)}.")
    if word == "/show":
        return Reply(show(session))
    raise UsageError(f"unknown command {word!r}", hint="/? lists the commands")


def _value(session: Session, name: str) -> str:
    row = next(r for r in session.settings.shown() if r.name == name)
    return f"{row.value} ({row.origin})"


def show(session: Session) -> str:
    lines = [f"  {label + ':':12}{value}" for label, value in session.about]
    lines.append("Parameters:")
    rows = session.settings.shown()
    width = max(len(r.name) for r in rows)
    for row in rows:
        if row.name == "system":
            continue
        lines.append(f"  {row.name:{width}}  {row.value:>6}  {row.origin}")
    system = rows[-1]
    lines += ["System prompt:", f"  {system.value}", f"  ({system.origin})"]
    return "Model:\n" + "\n".join(lines)
