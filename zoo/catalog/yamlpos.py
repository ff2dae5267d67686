"""Read a spec file into plain data while remembering where every key and value was written.

Why not ``yaml.safe_load``: error messages must point at ``path:line:col``, duplicate keys must
be an error (PyYAML silently keeps the last), and untrusted catalog folders must not be able to
exhaust memory with an alias bomb or overflow the stack with deep nesting. So this module
builds the data itself from libyaml's event stream (the C parser when available) with an
explicit stack: no recursion, a node budget that counts alias expansions, a depth limit.

Scalars follow the YAML 1.2 core schema (``yes``/``no``/``on`` stay strings, ``1_5`` is a
string, not 15), which is what a catalog maintainer expects; timestamps stay strings.
Mapping keys are always strings (the text as written).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml

from zoo.catalog.files import not_a_file
from zoo.catalog.problems import Problem

# A spec file is a few KB; a catalog maintainer never writes 4 MB of YAML by hand. Reading and
# parsing stays bounded even when someone points ZOO_CATALOG_PATH at a folder of junk.
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64
# Values in the document, counting every alias expansion: a billion-laughs file stops here.
MAX_NODES = 100_000

DataPath = tuple[str | int, ...]

_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"^[-+]?[0-9]+$")
_INT_OCT = re.compile(r"^0o[0-7]+$")
_INT_HEX = re.compile(r"^0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_INF = re.compile(r"^([-+]?)\.(?:inf|Inf|INF)$")
_NAN = re.compile(r"^\.(?:nan|NaN|NAN)$")

_TAG = "tag:yaml.org,2002:"
# A plain scalar starting with anything else is a string under the core schema (no regexes).
_MAYBE_NOT_TEXT = frozenset("0123456789+-.~nNtTfF")
# The pending key of a duplicate: its value is parsed and dropped.
_DUPLICATE = "\x00duplicate"


@dataclass
class Document:
    """A spec file's data with the 1-based (line, column) of every value and key."""

    path: str
    data: Any
    values: dict[DataPath, tuple[int, int]] = field(default_factory=dict)
    keys: dict[DataPath, tuple[int, int]] = field(default_factory=dict)
    # The first line of the file, for the yaml-language-server comment check.
    first_line: str = ""

    def where(self, path: DataPath, *, key: bool = False) -> tuple[int, int]:
        """The position of the value at ``path`` (or its key), else of its nearest ancestor.

        Values that came in through an alias have no position of their own: the alias (an
        ancestor) is the right place to point at.
        """
        probe = tuple(path)
        if key and probe in self.keys:
            return self.keys[probe]
        while probe:
            if probe in self.values:
                return self.values[probe]
            probe = probe[:-1]
        return self.values.get((), (1, 1))

    def problem(self, path: DataPath, code: str, message: str, *, key: bool = False) -> Problem:
        line, column = self.where(path, key=key)
        return Problem(self.path, line, column, code, message)


class _Stop(Exception):
    """Parsing cannot go on; the problem is already recorded."""


def read_text(path: Path, display: str | None = None) -> tuple[str | None, list[Problem]]:
    """The file's text, or a positioned E100 saying why it is not a readable spec file."""
    name = display or str(path)

    def fail(message: str, line: int = 1, column: int = 1) -> tuple[None, list[Problem]]:
        return None, [Problem(name, line, column, "E100", message)]

    try:
        kind = not_a_file(os.stat(path).st_mode)  # folders and sockets cannot be opened
        if kind:
            return fail(f"{kind}, not a spec file: skipped")
        # Non-blocking: opening a FIFO would otherwise wait for a writer forever. The checks
        # are made again on the opened file, so a path swapped for /dev/zero after the stat
        # cannot make the read endless, and the read is bounded whatever the file claims.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            kind = not_a_file(info.st_mode)
            if kind:
                return fail(f"{kind}, not a spec file: skipped")
            if info.st_size > MAX_FILE_BYTES:
                return fail(
                    f"file is {info.st_size / 1e6:.1f} MB; a spec file may be at most "
                    f"{MAX_FILE_BYTES // (1024 * 1024)} MiB"
                )
            raw = handle.read(MAX_FILE_BYTES + 1)
            if raw is None:  # a non-blocking read with nothing to give (/proc/kmsg)
                return fail("cannot read the file: it has no data without waiting")
    except OSError as error:
        return fail(f"cannot read the file: {error.strerror or error}")
    return decode(raw, name)


def decode(raw: bytes, name: str) -> tuple[str | None, list[Problem]]:
    """UTF-8 text from ``raw``, or a positioned E100 (binary data, bad encoding, too large)."""
    if len(raw) > MAX_FILE_BYTES:
        return None, [
            Problem(name, 1, 1, "E100", f"file is {len(raw) / 1e6:.1f} MB; too large for a spec")
        ]
    nul = raw.find(b"\x00")
    if nul >= 0:
        line, column = _offset_position(raw, nul)
        return None, [
            Problem(name, line, column, "E100", "binary data (a NUL byte): not a YAML file")
        ]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line, column = _offset_position(raw, error.start)
        byte = raw[error.start]
        return None, [
            Problem(name, line, column, "E100", f"not UTF-8 text: byte 0x{byte:02x} is invalid")
        ]
    return text, []


def _char_position(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _char_at(text: str, line: int, column: int) -> str:
    lines = text.split("\n", line)
    if len(lines) < line:
        return ""
    row = lines[line - 1]
    return row[column - 1] if 0 < column <= len(row) else ""


def _offset_position(raw: bytes, offset: int) -> tuple[int, int]:
    line = raw.count(b"\n", 0, offset) + 1
    start = raw.rfind(b"\n", 0, offset) + 1
    return line, offset - start + 1


def parse(text: str, name: str) -> tuple[Document | None, list[Problem]]:
    """Build a Document from YAML text; problems carry positions, nothing is raised."""
    composer = _Composer(name)
    document = Document(name, None, composer.values, composer.keys)
    document.first_line = text.split("\n", 1)[0]
    try:
        composer.run(_parser(text))
    except _Stop:
        return None, composer.problems
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        message = error.problem or "invalid YAML"
        if error.context:
            message = f"{message} ({error.context})"
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        if _char_at(text, line, column) == "\t":
            message += "; a tab: indent with spaces, YAML does not allow tabs there"
        return None, [*composer.problems, Problem(name, line, column, "E101", message)]
    except UnicodeEncodeError as error:  # lone surrogates: only from text not read from a file
        line, column = _char_position(text, error.start)
        return None, [Problem(name, line, column, "E100", "not valid Unicode text")]
    except yaml.reader.ReaderError as error:
        line, column = _char_position(text, error.position)
        message = f"character #x{error.character:04x} is not allowed in YAML"
        if isinstance(error.character, bytes):  # pragma: no cover - text input gives str
            message = "bytes that are not text"
        return None, [*composer.problems, Problem(name, line, column, "E101", message)]
    except yaml.YAMLError as error:
        first_line = str(error).splitlines()[0] if str(error) else "invalid YAML"
        return None, [*composer.problems, Problem(name, 1, 1, "E101", first_line)]
    if not composer.has_root:
        return None, [Problem(name, 1, 1, "E100", "the file is empty (no YAML document)")]
    document.data = composer.root
    return document, composer.problems


def load(path: Path, display: str | None = None) -> tuple[Document | None, list[Problem]]:
    text, problems = read_text(path, display)
    if text is None:
        return None, problems
    return parse(text, display or str(path))


def _parser(text: str) -> Any:
    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)


class _Frame:
    __slots__ = ("anchor", "container", "is_map", "path", "pending_key", "start_nodes")

    def __init__(self, container: Any, path: DataPath, anchor: str | None, start: int) -> None:
        self.container = container
        self.is_map = isinstance(container, dict)
        self.path = path
        self.anchor = anchor
        self.start_nodes = start
        self.pending_key: str | None = None


class _Composer:
    """Turns parser events into dicts, lists and scalars, recording positions."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.values: dict[DataPath, tuple[int, int]] = {}
        self.keys: dict[DataPath, tuple[int, int]] = {}
        self.problems: list[Problem] = []
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.stack: list[_Frame] = []
        self.nodes = 0
        self.documents = 0
        self.root: Any = None
        self.has_root = False
        # Depth of a subtree being skipped (a mapping used as a key, a duplicate key's value).
        self.skipping = 0

    def fail(self, mark: Any, code: str, message: str) -> _Stop:
        self.problems.append(Problem(self.name, mark.line + 1, mark.column + 1, code, message))
        return _Stop()

    def warn(self, mark: Any, code: str, message: str) -> None:
        self.problems.append(Problem(self.name, mark.line + 1, mark.column + 1, code, message))

    def count(self, mark: Any, amount: int = 1) -> None:
        self.nodes += amount
        if self.nodes > MAX_NODES:
            raise self.fail(
                mark,
                "E103",
                f"the document has more than {MAX_NODES} values "
                "(counting alias expansions): refusing to expand it",
            )

    def run(self, parser: Any) -> None:
        """Consume the parser's events (pulled one C call each: yaml.parse adds a generator
        and a second call per event, a third of the cost of reading a catalog)."""
        try:
            self._run(parser.get_event)
        finally:
            parser.dispose()

    def _run(self, get_event: Any) -> None:
        scalar_event = yaml.ScalarEvent
        stream_end = yaml.StreamEndEvent
        start_mapping, end_mapping = yaml.MappingStartEvent, yaml.MappingEndEvent
        start_sequence, end_sequence = yaml.SequenceStartEvent, yaml.SequenceEndEvent
        stack = self.stack
        values = self.values
        keys = self.keys
        while True:
            event = get_event()
            kind = type(event)
            if kind is stream_end or event is None:
                return
            # Fast path for the common case (an untagged, unanchored scalar inside a mapping
            # or list): the same steps as scalar()/key()/attach(), without the calls, which
            # is most of the cost of reading a large catalog. Anything unusual (tags,
            # anchors, duplicate or merge keys) takes the general path below.
            if (
                kind is scalar_event
                and stack
                and not self.skipping
                and event.tag is None
                and event.anchor is None
            ):
                frame = stack[-1]
                container = frame.container
                mark = event.start_mark
                if frame.is_map:
                    key = frame.pending_key
                    if key is None:
                        text = event.value
                        if text in container or text == "<<":
                            self.key(frame, text, mark, plain=event.implicit[0])
                        else:
                            keys[(*frame.path, text)] = (mark.line + 1, mark.column + 1)
                            frame.pending_key = text
                        continue
                    self.nodes += 1
                    if self.nodes > MAX_NODES:
                        self.count(mark, 0)
                    value = event.value
                    if event.implicit[0] and (not value or value[0] in _MAYBE_NOT_TEXT):
                        value = self.resolve_plain(value, mark)
                    frame.pending_key = None
                    if key != _DUPLICATE:
                        container[key] = value
                        values[(*frame.path, key)] = (mark.line + 1, mark.column + 1)
                    continue
                self.nodes += 1
                if self.nodes > MAX_NODES:
                    self.count(mark, 0)
                value = event.value
                if event.implicit[0] and (not value or value[0] in _MAYBE_NOT_TEXT):
                    value = self.resolve_plain(value, mark)
                values[(*frame.path, len(container))] = (mark.line + 1, mark.column + 1)
                container.append(value)
                continue
            if (kind is end_mapping or kind is end_sequence) and not self.skipping:
                frame = stack.pop()
                if frame.anchor is not None:
                    self.anchors[frame.anchor] = (
                        frame.container,
                        self.nodes - frame.start_nodes + 1,
                    )
                continue
            if (
                (kind is start_mapping or kind is start_sequence)
                and stack
                and not self.skipping
                and event.tag is None
                and len(stack) < MAX_DEPTH
            ):
                frame = stack[-1]
                key = frame.pending_key
                if not frame.is_map or (key is not None and key != _DUPLICATE):
                    self.nodes += 1
                    if self.nodes > MAX_NODES:
                        self.count(event.start_mark, 0)
                    opened: Any = {} if kind is start_mapping else []
                    mark = event.start_mark
                    if key is not None:  # inside a mapping, as the value of ``key``
                        frame.container[key] = opened
                        frame.pending_key = None
                        path: DataPath = (*frame.path, key)
                    else:
                        path = (*frame.path, len(frame.container))
                        frame.container.append(opened)
                    values[path] = (mark.line + 1, mark.column + 1)
                    stack.append(_Frame(opened, path, event.anchor, self.nodes))
                    continue
            if kind is scalar_event:
                self.scalar(event)
            elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
                self.start(event, {} if kind is yaml.MappingStartEvent else [])
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                self.end()
            elif kind is yaml.AliasEvent:
                self.alias(event)
            elif kind is yaml.DocumentStartEvent:
                self.documents += 1
                if self.documents > 1:
                    raise self.fail(
                        event.start_mark,
                        "E104",
                        "a second YAML document (---): a spec file holds exactly one family",
                    )

    def _check_tag(self, event: Any) -> None:
        tag = event.tag
        if tag is None or tag == "!":
            return
        if tag in (
            _TAG + "map",
            _TAG + "seq",
            _TAG + "str",
            _TAG + "int",
            _TAG + "float",
            _TAG + "bool",
            _TAG + "null",
        ):
            return
        raise self.fail(event.start_mark, "E104", f"YAML tag {tag!r} is not allowed in spec files")

    def start(self, event: Any, container: Any) -> None:
        if self.skipping:
            self.skipping += 1
            return
        self._check_tag(event)
        if len(self.stack) >= MAX_DEPTH:
            raise self.fail(event.start_mark, "E103", f"nested more than {MAX_DEPTH} levels deep")
        top = self.stack[-1] if self.stack else None
        if top is not None and isinstance(top.container, dict) and top.pending_key is None:
            raise self.fail(event.start_mark, "E104", "a mapping or list used as a key")
        self.count(event.start_mark)
        path = self.attach(container, event.start_mark)
        if path is None:  # the value of a duplicate key: parse it, keep the first value
            self.skipping = 1
            return
        self.stack.append(_Frame(container, path, event.anchor, self.nodes))

    def end(self) -> None:
        if self.skipping:
            self.skipping -= 1
            return
        frame = self.stack.pop()
        if frame.anchor is not None:
            self.anchors[frame.anchor] = (frame.container, self.nodes - frame.start_nodes + 1)

    def scalar(self, event: Any) -> None:
        if self.skipping:
            return
        self._check_tag(event)
        top = self.stack[-1] if self.stack else None
        if top is not None and isinstance(top.container, dict) and top.pending_key is None:
            self.key(top, event.value, event.start_mark, plain=event.implicit[0])
            if event.anchor is not None:
                self.anchors[event.anchor] = (event.value, 1)
            return
        self.count(event.start_mark)
        value = self.resolve(event)
        if self.attach(value, event.start_mark) is None:
            return
        if event.anchor is not None:
            self.anchors[event.anchor] = (value, 1)

    def alias(self, event: Any) -> None:
        if self.skipping:
            return
        if event.anchor not in self.anchors:
            raise self.fail(event.start_mark, "E101", f"unknown alias *{event.anchor}")
        value, size = self.anchors[event.anchor]
        top = self.stack[-1] if self.stack else None
        if top is not None and isinstance(top.container, dict) and top.pending_key is None:
            if not isinstance(value, str):
                raise self.fail(event.start_mark, "E104", "an alias to a non-string used as a key")
            self.key(top, value, event.start_mark, plain=False)
            return
        self.count(event.start_mark, size)
        self.attach(value, event.start_mark)

    def key(self, frame: _Frame, key: str, mark: Any, *, plain: bool) -> None:
        if plain and key == "<<":
            raise self.fail(mark, "E104", "merge keys (<<) are not supported: write the keys out")
        path = (*frame.path, key)
        if key in frame.container:
            first = self.keys.get(path, (0, 0))[0]
            self.warn(mark, "E102", f"duplicate key {key!r} (first defined on line {first})")
            frame.pending_key = _DUPLICATE
            return
        self.keys[path] = (mark.line + 1, mark.column + 1)
        frame.pending_key = key

    def attach(self, value: Any, mark: Any) -> DataPath | None:
        """Put ``value`` into the open container; its path, or None when it is discarded."""
        position = (mark.line + 1, mark.column + 1)
        if not self.stack:
            self.root = value
            self.has_root = True
            self.values[()] = position
            return ()
        frame = self.stack[-1]
        if isinstance(frame.container, dict):
            key = frame.pending_key
            frame.pending_key = None
            if key is None or key == _DUPLICATE:
                return None
            frame.container[key] = value
            path: DataPath = (*frame.path, key)
        else:
            path = (*frame.path, len(frame.container))
            frame.container.append(value)
        self.values[path] = position
        return path

    def resolve(self, event: Any) -> Any:
        value: str = event.value
        tag = event.tag
        if tag in (None, "!") and not event.implicit[0]:
            return value  # quoted or block scalar: always a string
        if tag is None:
            return self.resolve_plain(value, event.start_mark)
        short = tag[len(_TAG) :]
        if short == "str" or tag == "!":
            return value
        resolved: Any = self.resolve_plain(value, event.start_mark)
        expected: dict[str, type | tuple[type, ...]] = {
            "int": int,
            "float": (int, float),
            "bool": bool,
            "null": type(None),
        }
        wanted = expected[short]
        if (isinstance(resolved, bool) and short != "bool") or not isinstance(resolved, wanted):
            raise self.fail(event.start_mark, "E101", f"{value!r} is not a valid !!{short}")
        if short == "float":
            return float(cast("int | float", resolved))  # "1" tagged !!float is 1.0
        return resolved

    def resolve_plain(self, value: str, mark: Any) -> Any:
        if _NULL.match(value):
            return None
        if value in _BOOL:
            return _BOOL[value]
        try:
            if _INT.match(value):
                return int(value)
            if _INT_OCT.match(value):
                return int(value[2:], 8)
            if _INT_HEX.match(value):
                return int(value[2:], 16)
        except ValueError:
            raise self.fail(mark, "E101", "integer too large") from None
        if _FLOAT.match(value):
            return float(value)
        inf = _INF.match(value)
        if inf:
            return float("-inf") if inf.group(1) == "-" else float("inf")
        if _NAN.match(value):
            return float("nan")
        return value
