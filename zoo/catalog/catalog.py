"""The Catalog: every family from every catalog folder, indexed by name.

Public API used across zoo:
- ``load_catalog(paths=None, plugin_dirs=()) -> Catalog``: built-in specs, the user folder,
  ``ZOO_CATALOG_PATH`` folders and the plugin folders it is given (or exactly ``paths``).
  The catalog never asks plugins itself (it sits below them): ``zoo.registry`` asks them and
  passes their folders in, and is what commands call.
- ``Catalog.families`` (a Mapping name -> Family, sorted by name; a FamilyIndex that builds
  each Family on first access), ``Catalog.get(name)`` (raises NotFoundError with a
  did-you-mean), ``Catalog.problems`` (every Problem found, warnings too; ``errors`` only the
  errors), ``Catalog.search(text)``, ``Catalog.summaries()`` (the ``zoo list`` rows, cheap).
- ``builtin_catalog_dir() -> Path``.

Folders are read in that order and the first definition of a family wins; a second one is
reported (E306) with both locations and skipped. A file with errors is reported and skipped:
one broken file never breaks ``zoo list``. Validated files come from the compiled-catalog
cache (``zoo.catalog.cache``), so listing ~165 families parses no YAML on a warm run.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.catalog.files import not_a_file
from zoo.catalog.problems import Problem
from zoo.catalog.validate import FileResult
from zoo.errors import NotFoundError

if TYPE_CHECKING:
    from zoo.catalog.cache import CompiledCatalog
    from zoo.catalog.model import Family

SPEC_SUFFIXES = (".yaml", ".yml")


class FamilyIndex(Mapping[str, "Family"]):
    """name -> Family, building each Family from its validated data on first access.

    Listing ~165 families needs only a few facts of each; building every Family (thousands of
    Spec and Source objects) would cost more than the rest of ``zoo list``. ``summary`` gives
    those facts straight from the data.
    """

    def __init__(self, results: Mapping[str, FileResult]) -> None:
        self._results = dict(sorted(results.items()))
        self._built: dict[str, Family] = {}

    def __getitem__(self, name: str) -> Family:
        family = self._built.get(name)
        if family is None:
            family = self._built[name] = self._results[name].family()
        return family

    def __iter__(self) -> Iterator[str]:
        return iter(self._results)

    def __len__(self) -> int:
        return len(self._results)

    def __contains__(self, name: object) -> bool:
        return name in self._results

    def summary(self, name: str) -> dict[str, Any]:
        from zoo.catalog.views import summary_from_data

        result = self._results[name]
        assert result.data is not None
        line, column = result.positions.get("family") or (0, 0)
        location = f"{result.path}:{line}:{column}" if line else result.path
        return summary_from_data(result.data, location)


@dataclass
class Catalog:
    # A FamilyIndex when loaded by load_catalog; any mapping works (tests build plain dicts).
    families: Mapping[str, Family] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    # The folders and files the catalog was read from, in order.
    sources: list[Path] = field(default_factory=list)

    def get(self, name: str) -> Family:
        family = self.families.get(name) or self.families.get(name.lower())
        if family is None:
            import difflib

            close = difflib.get_close_matches(name.lower(), list(self.families), n=3)
            hint = f"did you mean {', '.join(close)}?" if close else "see `zoo list`"
            raise NotFoundError(f"unknown model {name!r}", hint=hint)
        return family

    def search(self, text: str) -> list[Family]:
        """Families matching every word of ``text``, best first.

        A word matches the name, description, kind, abilities, formats, languages,
        architectures or a model id; name matches rank first.
        """
        words = text.lower().split()
        if not words:
            return list(self.families.values())
        scored: list[tuple[int, str, Family]] = []
        for family in self.families.values():
            name = family.name.lower()
            haystack = _search_text(family)
            if all(word in haystack for word in words):
                score = sum(3 if word in name else 1 for word in words)
                if " ".join(words) == name:
                    score += 10
                scored.append((-score, family.name, family))
        return [family for _, _, family in sorted(scored, key=lambda item: item[:2])]

    def summaries(self) -> list[dict[str, Any]]:
        """``views.family_summary`` of every family, in name order, built cheaply."""
        from zoo.catalog.views import family_summary

        if isinstance(self.families, FamilyIndex):
            return [self.families.summary(name) for name in self.families]
        return [family_summary(family) for family in self.families.values()]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]

    def __iter__(self) -> Iterator[Family]:
        return iter(self.families.values())

    def __len__(self) -> int:
        return len(self.families)


def _search_text(family: Family) -> str:
    from zoo import kinds

    known = kinds.KINDS.get(family.kind) if family.kind != kinds.LLM else None
    parts = [
        family.name,
        family.description,
        # "embedding", "rerank", and as people say it: "reranker" ("language model" is not
        # added: that word would match every LLM)
        family.kind,
        known.title if known else "",
        *family.abilities,
        *family.formats,
        *family.languages,
        *family.architectures,
    ]
    parts.extend(source.model_id for spec in family.specs for source in spec.sources)
    return " ".join(parts).lower()


def builtin_catalog_dir() -> Path:
    """The catalog shipped with zoo: ``zoo/_builtin_specs`` when installed, else ``specs/``."""
    package_dir = Path(__file__).resolve().parent.parent
    installed = package_dir / "_builtin_specs"
    if installed.is_dir():
        return installed
    return package_dir.parent / "specs"


def env_catalog_dirs() -> list[Path]:
    extra = os.environ.get("ZOO_CATALOG_PATH", "")
    return [Path(p).expanduser() for p in extra.split(os.pathsep) if p]


def default_catalog_dirs(plugin_dirs: Sequence[Path] = ()) -> list[Path]:
    """The catalog folders in the order they are read: built-in, the user's, ZOO_CATALOG_PATH,
    then the plugin folders the caller got from the plugins (``zoo.registry``)."""
    from zoo.paths import user_catalog_dir

    return [builtin_catalog_dir(), user_catalog_dir(), *env_catalog_dirs(), *plugin_dirs]


def spec_files(paths: Iterable[Path]) -> list[Path]:
    """The spec files in ``paths`` (folders are read flat, sorted; files are taken as given).

    Every ``*.yaml`` entry is listed, FIFOs, devices and symlinks to them included:
    ``check_files`` reports each of those as a problem instead of reading it (which would
    hang or never end), so a strange entry is visible rather than silently ignored.
    """
    files: list[Path] = []
    for path in paths:
        try:
            if path.is_dir():
                files.extend(
                    sorted(
                        p
                        for p in path.iterdir()
                        if p.suffix in SPEC_SUFFIXES and not p.name.startswith(".")
                    )
                )
            elif os.path.lexists(path):
                files.append(path)
        except OSError:
            continue  # an unreadable folder in ZOO_CATALOG_PATH is not worth a crash
    return files


# Below this many files to check, a worker pool costs more than it saves.
PARALLEL_MIN_FILES = 64


def check_files(
    files: Sequence[Path],
    cache: CompiledCatalog | None = None,
    display: dict[Path, str] | None = None,
    *,
    problems_only: bool = False,
) -> list[FileResult]:
    """Validate ``files``, through ``cache`` when given (results for unchanged files reused).

    Parsing YAML with positions is CPU-bound, so a large batch of files to check (a fresh
    cache, ``zoo validate`` of a big catalog) is spread over the machine's cores.
    ``problems_only`` keeps just the problems and each family's name (all ``zoo validate``
    needs), which spares sending every file's data back from the workers.
    """
    results: list[FileResult | None] = []
    todo: list[tuple[int, Path, str, os.stat_result]] = []
    for file in files:
        name = (display or {}).get(file, str(file))
        try:
            stat = file.stat()
        except OSError as error:
            reason = f"cannot read the file: {error.strerror or error}"
            results.append(FileResult(name, None, [Problem(name, 0, 0, "E100", reason)]))
            continue
        kind = not_a_file(stat.st_mode)
        if kind is not None:  # never opened: a FIFO would hang the read, /dev/zero never ends
            reason = f"{kind}, not a spec file: skipped"
            results.append(FileResult(name, None, [Problem(name, 0, 0, "E100", reason)]))
            continue
        cached = cache.lookup(name, stat) if cache is not None else None
        if cached is None:
            todo.append((len(results), file, name, stat))
        results.append(cached)
    for (index, _, name, stat), checked in zip(todo, _check_all(todo, problems_only), strict=True):
        if cache is not None:
            cache.store(name, stat, checked)
        results[index] = checked
    return [r for r in results if r is not None]


def _check_all(
    todo: Sequence[tuple[int, Path, str, os.stat_result]], problems_only: bool
) -> list[FileResult]:
    jobs = [(file, name, problems_only) for _, file, name, _ in todo]
    workers = min(os.cpu_count() or 1, 8)
    # fork only: it starts workers in milliseconds with everything already imported; where it
    # is not the platform's way (macOS, Windows), or where other threads run (a fork could copy
    # a lock one of them holds), the files are checked in this process.
    if (
        len(jobs) < PARALLEL_MIN_FILES
        or workers < 2
        or sys.platform != "linux"
        or threading.active_count() > 1
    ):
        return [_check_job(job) for job in jobs]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("fork")
    chunk = max(1, len(jobs) // (workers * 4))
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        return list(pool.map(_check_job, jobs, chunksize=chunk))


def _check_job(job: tuple[Path, str, bool]) -> FileResult:
    from zoo.catalog.validate import check_file

    file, name, problems_only = job
    result = check_file(file, name)
    if problems_only and result.data is not None:
        result.data = {"name": result.data["name"]}
        result.positions = {"name": result.positions.get("name")}
    return result


def load_catalog(
    paths: Sequence[Path] | None = None,
    *,
    plugin_dirs: Sequence[Path] = (),
    use_cache: bool = True,
    cache: CompiledCatalog | None = None,
) -> Catalog:
    """Every valid family in the catalog folders (or exactly ``paths``), with every problem.

    ``plugin_dirs`` are the folders plugins contribute, read last (ignored with ``paths``).
    ``cache`` is a compiled-catalog cache the caller already opened (it is saved here);
    without one, the default cache is opened unless ``use_cache`` is false.
    """
    from zoo.catalog.cache import CompiledCatalog
    from zoo.catalog.validate import duplicate_problems

    if cache is None and use_cache:
        cache = CompiledCatalog.open()
    sources = default_catalog_dirs(plugin_dirs) if paths is None else [Path(p) for p in paths]
    files = spec_files(sources)
    results = check_files(files, cache)
    if cache is not None:
        if paths is None:
            cache.keep_only({str(f) for f in files})
        cache.save()

    catalog = Catalog(sources=sources)
    usable: dict[str, FileResult] = {}
    for result in results:
        catalog.problems.extend(result.problems)
        if result.data is not None and result.data["name"] not in usable:
            usable[result.data["name"]] = result
    catalog.problems.extend(duplicate_problems(results))
    catalog.families = FamilyIndex(usable)
    return catalog
