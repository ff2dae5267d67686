"""Problems found in spec files: a code, a severity, a message and where it is.

Every check in the catalog reports through ``Problem`` so ``zoo validate``, ``zoo list`` and
the docs build all print the same ``path:line:col: error[code]: message`` line.

Codes are stable (tests pin them, users grep for them):

- E1xx reading and YAML: the bytes cannot become a document.
- E2xx schema: the document does not have the shape of a spec file.
- E3xx semantics: the shape is right but the facts cannot be true.
- W3xx warnings: probably a mistake, but a catalog with them still loads.
- E4xx the online check (``zoo catalog check``): what a hub says differs from the spec.
"""

from __future__ import annotations

from dataclasses import dataclass

# code -> one-line summary, shown by `zoo validate --codes` and the docs.
CODES: dict[str, str] = {
    "E100": "the file cannot be read as a spec (missing, empty, binary, not UTF-8, too large)",
    "E101": "YAML syntax error",
    "E102": "a key appears twice in the same mapping",
    "E103": "the document is too deep, too large or expands too many aliases",
    "E104": "a YAML feature spec files do not use (tags, merge keys, complex keys, documents)",
    "E200": "a value has the wrong type or a required field is missing",
    "E201": "an unknown key",
    "E202": "a number out of range (zero or negative, not a number, infinite or too large)",
    "E203": "a value that is not one of the allowed choices",
    "E204": "a string that does not match the required pattern",
    "E300": "a quantization name the spec's format does not have",
    "E301": "one model id serves several quantizations without `{quantization}` to tell them apart",
    "E302": "split parts listed under a name that is not a quantization of the format",
    "E303": "a GGUF file or split template on a format that is not ggufv2",
    "E304": "a malformed hub id (repository or package name)",
    "E305": "a file template that escapes the repository (.., absolute, backslash, control "
    "characters)",
    "E306": "a family name defined in more than one file",
    "E307": "a ggufv2 source without a file template for some quantization",
    "E308": "a split template without `{part}`",
    "E309": "a spec without any quantization",
    "E311": "an unknown placeholder in a file template (only {quantization} and {part})",
    "E312": "a revision a download would refuse ('..', empty parts) or a malformed version",
    "E313": "a field that does not fit the family's kind (a chat template on an embedding "
    "model, embedding facts on a language model, a language model without abilities)",
    "E314": "a Matryoshka dimension not smaller than the model's dimensions",
    "E315": "split part names that are not parts 1 to M of the same M (NNNNN-of-MMMMM)",
    "W300": "a spec quantization that no source provides",
    "W301": "activated size not smaller than the total size",
    "W302": "an `unverified` entry that names no field of the source",
    "W303": "the file does not start with the yaml-language-server $schema comment",
    "W304": "the fim ability without a fim template",
    "W305": "a fim template without the fim ability",
    "W306": "a source quantization that the spec's own list does not have",
    "W307": "split parts for a quantization the source does not list (never used)",
    "E401": "check: the hub has no such repository (or it is private)",
    "E402": "check: the hub has no such revision (or the commit a lock pinned is gone)",
    "E403": "check: a file the spec names is not in the repository",
    "E404": "check: a quantization is split in another number of parts on the hub",
    "E405": "check: the repository listing has no weights to select (no config.json or weights)",
    "E406": "check: a file's size or sha256 on the hub differs from the lock",
    "E407": "check: a lock entry for a repository or revision the spec no longer names",
    "E408": "check: a hub that cannot be reached (the line names the hub, not a source)",
    "E409": "check: a hub answer zoo refuses (listing entries escaping the repository, "
    "impossible sizes, malformed hashes) or a hub failure",
    "E410": "check: a lock file that cannot be read",
    "W308": "a size in a repository id or file name that disagrees with the spec's size",
    "W309": "an active size in an id (-A3B) that disagrees with activated_size or lacks one",
    "W310": "a repository id or file naming a model series no other id of the family names",
    "W311": "a repository id naming a weight format (FP8, AWQ, GPTQ, GGUF, MLX) the spec is not",
    "W312": "a chat template with no newline at all that looks flattened",
    "W313": "a pytorch spec with a quantization that names a stored format (Int4, fp8, ...)",
}


def one_line(text: str) -> str:
    """``text`` with control characters escaped, so it prints as one harmless line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


@dataclass(frozen=True, order=True)
class Problem:
    """One finding; ``line``/``column`` are 1-based, 0 when the position is unknown."""

    path: str
    line: int
    column: int
    code: str
    message: str

    def __post_init__(self) -> None:
        # One problem is one line, whatever keys or values the file had (a key may hold a
        # newline or a terminal escape sequence).
        object.__setattr__(self, "message", one_line(self.message))

    @property
    def severity(self) -> str:
        return "error" if self.code.startswith("E") else "warning"

    @property
    def is_error(self) -> bool:
        return self.code.startswith("E")

    def __str__(self) -> str:
        path = one_line(self.path)
        where = f"{path}:{self.line}:{self.column}" if self.line else path
        return f"{where}: {self.severity}[{self.code}]: {self.message}"

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
        }
