"""What differs between two definitions of the same family, one line per fact.

Used when an imported family has the same name as a hand-written one: the hand-written one
wins, and the import reports what the other registry says differently.
"""

from __future__ import annotations

from zoo.catalog.model import Family, Spec

_FAMILY_FACTS = (
    "description",
    "context_length",
    "languages",
    "abilities",
    "architectures",
    "license",
    "homepage",
    "chat_template",
    "stop",
    "stop_token_ids",
    "reasoning_start_tag",
    "reasoning_end_tag",
    "tool_parser",
    "fim",
)
_SOURCE_FACTS = (
    "model_id",
    "revision",
    "quantizations",
    "file",
    "split",
    "multimodal_projectors",
    "draft",
)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 70 else text[:67] + "..."


def _spec_key(spec: Spec) -> str:
    return f"{spec.format} {spec.size_label}B"


def family_differences(ours: Family, theirs: Family) -> list[str]:
    """Facts where ``theirs`` differs from ``ours`` ("ours" is the definition that is kept)."""
    lines: list[str] = []
    for name in _FAMILY_FACTS:
        mine, other = getattr(ours, name), getattr(theirs, name)
        if mine != other and other not in (None, ()):
            lines.append(f"{name}: ours {_show(mine)}, theirs {_show(other)}")
    our_specs = {_spec_key(s): s for s in ours.specs}
    their_specs = {_spec_key(s): s for s in theirs.specs}
    for key in their_specs.keys() - our_specs.keys():
        lines.append(f"spec {key}: only theirs has it")
    for key in our_specs.keys() - their_specs.keys():
        lines.append(f"spec {key}: only ours has it")
    for key in sorted(our_specs.keys() & their_specs.keys()):
        mine_spec, other_spec = our_specs[key], their_specs[key]
        if mine_spec.activated_size != other_spec.activated_size:
            lines.append(
                f"spec {key}: activated_size ours {mine_spec.activated_size}, "
                f"theirs {other_spec.activated_size}"
            )
        for hub in dict.fromkeys(mine_spec.hubs + other_spec.hubs):
            mine_src, other_src = mine_spec.source(hub), other_spec.source(hub)
            if mine_src is None or other_src is None:
                side = "theirs" if mine_src is None else "ours"
                lines.append(f"spec {key} {hub}: only {side} has it")
                continue
            for name in _SOURCE_FACTS:
                a, b = getattr(mine_src, name), getattr(other_src, name)
                if a != b:
                    lines.append(f"spec {key} {hub}: {name} ours {_show(a)}, theirs {_show(b)}")
    return sorted(lines)
