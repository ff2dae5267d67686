"""Write spec documents as YAML a person can read, and that reads back exactly.

PyYAML's pure-Python SafeDumper does the escaping (so every string round-trips); this module
only chooses styles: mappings in block style, short lists of scalars in flow style, multi-line
strings as literal ``|`` blocks, and double quotes for any string another YAML reader could
mistake for something else ("none", "on", "1e5", "0.10", "1_5", dates...). The pure-Python
dumper is used on purpose: libyaml's emitter may choose different styles, and generated files
must be byte-identical on every machine.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

# Strings that some YAML reader (1.1 as PyYAML, 1.2 core as editors and JS tools) would read
# as null, a boolean, a number or a date, plus words people read as null. They get quotes.
_TYPED = re.compile(
    r"""(?x)^(?:
      ~ | null | none | nil
    | y | n | yes | no | true | false | on | off
    | [-+]?(?:0|[1-9][0-9_]*)                       # integers, also 1_5
    | [-+]?0[0-7_]+ | 0o[0-7]+ | 0x[0-9a-f_]+ | 0b[01_]+
    | [-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:e[-+]?[0-9]+)?   # floats, also 1e5
    | [-+]?\.(?:inf) | \.nan
    | [0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?     # YAML 1.1 sexagesimal
    | [0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[ tT].*)?      # dates and timestamps
    )$""",
    re.IGNORECASE,
)

# Lists with an item longer than this are written one item per line.
_FLOW_ITEM_LIMIT = 40


class _SpecDumper(yaml.SafeDumper):
    """SafeDumper with the styles spec files use and no anchors/aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # Indent block lists under their key ("specs:\n  - format: ...") like hand-written specs.
        super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        # Literal block; PyYAML falls back to a quoted style when a block cannot hold it.
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    if _TYPED.match(value):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


def _represent_list(dumper: yaml.SafeDumper, value: Sequence[Any]) -> yaml.SequenceNode:
    # Lists of short words ([en, zh], quantizations) read best inline; anything longer (package
    # requirements, sentences) one item per line, where a wrapped flow list would split items.
    flow = all(
        isinstance(v, int | float)
        or (isinstance(v, str) and len(v) <= _FLOW_ITEM_LIMIT and "\n" not in v)
        for v in value
    )
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)


def _represent_dict(dumper: yaml.SafeDumper, value: Mapping[str, Any]) -> yaml.MappingNode:
    # Keys stay in the order the document was built in (stable, chosen by the caller).
    flow = not value  # "{}" for an empty mapping
    return dumper.represent_mapping("tag:yaml.org,2002:map", value.items(), flow_style=flow)


_SpecDumper.add_representer(str, _represent_str)
_SpecDumper.add_representer(list, _represent_list)
_SpecDumper.add_representer(tuple, _represent_list)
_SpecDumper.add_representer(dict, _represent_dict)


def dump_document(document: Mapping[str, Any], header: str = "") -> str:
    """``document`` as YAML text, after ``header`` (comment lines, each starting with #)."""
    body = yaml.dump(
        dict(document),
        Dumper=_SpecDumper,
        sort_keys=False,
        allow_unicode=True,
        width=96,
        indent=2,
        default_flow_style=False,
    )
    return header + body
