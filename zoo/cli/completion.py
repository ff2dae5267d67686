"""Shell completion: the scripts ``zoo completion bash|zsh|fish`` prints, and the answers.

typer's completion (the click protocol as typer ships it, on typer's own copy of click, which
zoo's commands are built on): the shell script runs zoo with ``_ZOO_COMPLETE=complete_bash``
(``complete_zsh``, ``complete_fish``; click's spelling ``bash_complete`` is understood too)
and the words typed so far (``COMP_WORDS``/``COMP_CWORD`` for bash, ``_TYPER_COMPLETE_ARGS``
for zsh and fish), and zoo prints the completions. ``zoo.cli.app.main`` drives commands itself
rather than through click's ``main`` (which is where click answers completion requests), so the
scripts call ``zoo completion`` with those variables, and that command answers: it builds the
command line the words need, as ``main`` would, and lets typer complete it.

Model references complete from the catalog: family names, then after ``name:`` that family's
tags (``qwen3:8b``, ``qwen3:q4_k_m``, ``qwen3:8b-q4_k_m``).

bash splits words at ``:`` (``COMP_WORDBREAKS``), so ``qwen3:8`` arrives as ``qwen3 : 8``;
the words are joined again here and the answers trimmed to what bash replaces, which is what
bash-completion's ``__ltrim_colon_completions`` does for scripts that have it.
"""

from __future__ import annotations

from typing import Any

from typer._click.shell_completion import ShellComplete
from typer._completion_classes import BashComplete, FishComplete, ZshComplete

from zoo.errors import UsageError

COMPLETE_VAR = "_ZOO_COMPLETE"
PROG_NAME = "zoo"


class _Bash(BashComplete):
    trim = ""  # what bash keeps of the word being completed (``qwen3:``)

    def get_completion_args(self) -> tuple[list[str], str]:
        args, incomplete = super().get_completion_args()
        words, self.trim = join_colons([*args, incomplete])
        return words[:-1], words[-1]

    def format_completion(self, item: Any) -> str:
        if self.trim and item.value.startswith(self.trim):
            item.value = item.value[len(self.trim) :]
        return str(super().format_completion(item))


# The one change to click's scripts: run `zoo completion` instead of `zoo` (see above).
_CALLS = {
    "bash": ("=complete_bash $1 )", "=complete_bash $1 completion )"),
    "zsh": ("=complete_zsh %(prog_name)s)", "=complete_zsh %(prog_name)s completion)"),
    "fish": ("(commandline -cp) %(prog_name)s", "(commandline -cp) %(prog_name)s completion"),
}
SHELLS: dict[str, type[ShellComplete]] = {"bash": _Bash, "zsh": ZshComplete, "fish": FishComplete}


def join_colons(words: list[str]) -> tuple[list[str], str]:
    """``[launch, qwen3, :, 8]`` -> ``[launch, qwen3:8]`` and the part of the last word that
    bash does not replace (``qwen3:``). A lone ``:`` is never a word zoo takes."""
    joined: list[str] = []
    glue = False
    for word in words:
        if word == ":" and joined:
            joined[-1] += ":"
            glue = True
        elif glue:
            joined[-1] += word
            glue = False
        else:
            joined.append(word)
    last = joined[-1] if joined else ""
    merged = len(joined) < len(words)
    trim = last[: last.rfind(":") + 1] if merged and ":" in last else ""
    return joined or [""], trim


def script(shell: str) -> str:
    """The completion script for ``shell`` (bash, zsh or fish)."""
    completer = _completer(shell, None)
    old, new = _CALLS[shell]
    template = completer.source_template
    if old not in template:  # a click release changed its scripts: say so instead of lying
        raise UsageError(f"cannot build the {shell} completion script with this click version")
    return template.replace(old, new) % completer.source_vars()


def answer(instruction: str) -> str:
    """What ``$_ZOO_COMPLETE`` asks: ``source_bash`` (the script) or ``complete_bash`` (the
    completions for the words in the environment); ``bash_source`` and ``bash_complete``, as
    click spells them, too."""
    first, _, second = instruction.partition("_")
    shell, action = (first, second) if first in SHELLS else (second, first)
    if shell not in SHELLS or action not in ("source", "complete"):
        names = ", ".join(f"source_{s}, complete_{s}" for s in SHELLS)
        raise UsageError(f"{COMPLETE_VAR}={instruction!r} is not understood", hint=names)
    if action == "source":
        return script(shell)
    completer = _completer(shell, None)
    try:
        args, _ = completer.get_completion_args()
    except (ValueError, IndexError):  # a shell's variables gone wrong (COMP_CWORD=abc)
        return ""  # nothing to offer: an error would land in the user's prompt

    completer.cli = _command_for(args)
    return str(completer.complete())


def _completer(shell: str, command: Any) -> ShellComplete:
    # The command is only needed to complete, and is built once the words are known.
    return SHELLS[shell](command, {}, PROG_NAME, COMPLETE_VAR)


def _command_for(typed: list[str]) -> Any:
    """The click command for the words typed before the one being completed: only the modules
    their first word needs, and plugin commands only where that word is not a built-in
    command (as ``zoo.cli.app.main`` does)."""
    from typer.main import get_command

    from zoo.cli.app import COMMAND_MODULES, build_app, modules_for

    modules = modules_for(typed)
    return get_command(build_app(with_plugins=modules == COMMAND_MODULES, modules=modules))


def model_completions(incomplete: str) -> list[str]:
    """Family names starting with ``incomplete``; after ``name:``, that family's tags."""
    from zoo.reference import family_tags, spec_tag
    from zoo.registry import catalog_with_plugins

    try:
        catalog = catalog_with_plugins()
    except Exception:  # completion must never print a traceback into the user's prompt
        return []
    name, colon, tag = incomplete.partition(":")
    if not colon:
        lowered = incomplete.lower()
        return [n for n in catalog.families if n.lower().startswith(lowered)]
    family = catalog.families.get(name) or catalog.families.get(name.lower())
    if family is None:
        return []
    sizes, quantizations = family_tags(family)
    tags = sizes + quantizations
    if "-" in tag:  # "8b-": a size given, the quantizations of that size follow
        tags += [f"{spec_tag(s)}-{q.lower()}" for s in family.specs for q in s.quantizations if q]
    tag = tag.lower()
    return list(dict.fromkeys(f"{family.name}:{t}" for t in tags if t.startswith(tag)))
