"""The home page's featured models: a short hand-picked list, one line each.

The list is chosen by people (what a newcomer should try first, one of each kind); each line's
facts come from the catalog, and a featured name the catalog lacks (a site built from another
catalog) is left out, so the page never links to a missing model.
"""

from __future__ import annotations

from collections.abc import Sequence

from zoo.catalog.model import Family, context_label
from zoo.docs import rst
from zoo.docs.family_page import family_label, run_command

# Name -> why it is worth a look; the order is the page's.
FEATURED: dict[str, str] = {
    "smollm2-135m-instruct": "A tiny chat model that answers at once on any CPU: try it first.",
    "qwen3": "Qwen's dense and MoE chat models, thinking or not.",
    "gpt-oss": "OpenAI's open-weight MoE reasoning models.",
    "llama-3.1-instruct": "Meta's Llama 3.1 chat models, with tool calls.",
    "gemma-3-it": "Google's Gemma 3: multilingual, reads images.",
    "qwen2.5-coder-instruct": "Qwen's coding assistants.",
    "deepseek-r1": "DeepSeek's large reasoning model.",
    "bge-m3": "An embedding model for search in 100+ languages.",
    "bge-reranker-v2-m3": "A reranker to reorder what a search found.",
}


def render_featured(families: Sequence[Family]) -> str:
    """The featured list as RST, for ``.. include::`` in the home page."""
    by_name = {f.name: f for f in families}
    lines = []
    for name, why in FEATURED.items():
        family = by_name.get(name)
        if family is None:
            continue
        sizes = sorted({(s.size, s.size_label) for s in family.specs})
        facts = ", ".join(
            [
                "/".join(f"{label}B" for _, label in sizes),
                f"{context_label(family.context_length)} context",
            ]
        )
        lines.append(
            f"- {rst.ref(name, family_label(name))} ({facts}): {rst.text(why)} "
            f"{rst.literal(run_command(family))}"
        )
    if not lines:
        return "The catalog has none of the featured models; see the models index.\n"
    return "\n".join(lines) + "\n"
