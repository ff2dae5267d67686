"""``zoo catalog check``: whether every source of the catalog is on its hub as the spec says.

For each family x spec x source x quantization: the repository (``Source.repo_for``), the
revision, every file a download fetches (the exact files and split parts of GGUF sources; for
formats chosen from the listing, that ``zoo.hubs.select`` finds weights) and, where a lock
records them, their sizes and sha256. Which files a source needs is decided by the one rule the
download uses, ``zoo.resolve.file_selection``, so the check checks exactly what a download
fetches. Findings are ``Problem`` lines (E401-E410) at the source's ``file:line:col``.

What is checked is what a download fetches: the commit a current lock pinned the spec's
revision to, else the spec's revision. ``--fix`` asks the spec's revision afresh and writes the
family's lock (``zoo.catalog.lock``) for every repository without problems.

Each (hub, endpoint, repository, revision) is asked once, whatever number of specs and
quantizations share it; the asking (concurrency, rate limit, retries, checkpoint) is
``zoo.catalog.check_ask``. Hubs come from the caller: this module never loads plugins.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from zoo.catalog.check_ask import (
    NO_REPO,
    NO_REVISION,
    OK,
    UNREACHABLE,
    Answer,
    Asker,
    Checkpoint,
    Key,
    RateLimit,
    is_commit,
)
from zoo.catalog.lock import FamilyLock, LockedFile, LockedRepo, LockError, lock_path, read_lock
from zoo.catalog.model import PART_PLACEHOLDER, QUANTIZATION_PLACEHOLDER, Location
from zoo.catalog.problems import Problem

if TYPE_CHECKING:
    from zoo.catalog.model import Family, Source, Spec
    from zoo.hubs.base import Hub, RemoteFile


@dataclass(frozen=True)
class CheckOptions:
    """``hubs``: the hubs to ask (empty: every hub whose listing is cheap). ``checkpoint``:
    where answers are saved (default: ``<state>/catalog-check/checkpoint.jsonl``)."""

    hubs: tuple[str, ...] = ()
    fix: bool = False
    jobs: int = 4
    rate: float = 5.0
    resume: bool = False
    retries: int = 3
    backoff: float = 1.0
    checkpoint: Path | None = None


@dataclass
class CheckReport:
    problems: list[Problem] = field(default_factory=list)
    families: int = 0
    sources: int = 0
    repositories: int = 0
    hubs: int = 0
    # Requests made, and answers reused from the checkpoint (--resume).
    requests: int = 0
    resumed: int = 0
    # One line per lock file --fix wrote (or could not), and how many could not be written.
    written: list[str] = field(default_factory=list)
    write_failures: int = 0

    def summary(self) -> str:
        return (
            f"checked {self.families} families, {self.sources} sources in "
            f"{self.repositories} repositories on {self.hubs} hubs: {len(self.problems)} problems"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "families": self.families,
            "sources": self.sources,
            "repositories": self.repositories,
            "hubs": self.hubs,
            "requests": self.requests,
            "resumed": self.resumed,
            "problems": [p.to_json() for p in self.problems],
            "written": list(self.written),
            "write_failures": self.write_failures,
        }


@dataclass(frozen=True)
class _Target:
    """One quantization of one source: what to ask and what to expect."""

    family: Family
    spec: Spec
    source: Source
    quantization: str
    repo: str
    key: Key
    locked: LockedRepo | None  # the lock entry the download would use (not with --fix)


def default_checkpoint() -> Path:
    from zoo.paths import state_dir

    return state_dir() / "catalog-check" / "checkpoint.jsonl"


def chosen_hubs(hubs: Mapping[str, Hub], asked: Sequence[str]) -> dict[str, Hub]:
    """The hubs to check: those asked for (each must be installed), else the cheap ones."""
    from zoo.errors import UsageError

    if not asked:
        return {name: hub for name, hub in hubs.items() if hub.cheap_listing}
    unknown = [name for name in asked if name not in hubs]
    if unknown:
        raise UsageError(
            f"unknown hub {unknown[0]!r}", hint="installed: " + (", ".join(sorted(hubs)) or "none")
        )
    return {name: hubs[name] for name in dict.fromkeys(asked)}


def check_families(
    families: Sequence[Family], hubs: Mapping[str, Hub], options: CheckOptions = CheckOptions()
) -> CheckReport:
    """Check ``families`` against the chosen ``hubs`` (see the module docstring)."""
    chosen = chosen_hubs(hubs, options.hubs)
    report = CheckReport(families=len(families))
    problems: set[Problem] = set()
    locks: dict[str, FamilyLock | None] = {}
    targets: list[_Target] = []
    for family in families:
        lock, broken = _family_lock(family)
        locks[family.name] = lock
        if not options.fix:  # --fix replaces an unreadable lock, as it drops stale entries
            problems.update(broken)
        for spec in family.specs:
            for source in spec.sources:
                hub = chosen.get(source.hub)
                if hub is None:
                    continue
                report.sources += 1
                for q in source.quantizations:
                    target = _target(family, spec, source, q, hub, options.fix)
                    if isinstance(target, Problem):
                        problems.add(target)
                    else:
                        targets.append(target)
        if not options.fix:
            problems.update(_stale(family, lock, chosen))
    report.repositories = len({(t.key.hub, t.repo) for t in targets})
    report.hubs = len({t.key.hub for t in targets})

    checkpoint = Checkpoint(options.checkpoint or default_checkpoint(), resume=options.resume)
    asker = Asker(
        chosen,
        RateLimit(options.rate),
        checkpoint,
        jobs=options.jobs,
        retries=options.retries,
        backoff=options.backoff,
    )
    answers = asker.ask_all([t.key for t in targets])
    report.requests = asker.requests
    report.resumed = sum(1 for a in answers.values() if a.resumed)

    troubled: set[tuple[str, str, str]] = set()  # (family, hub, repo) with a problem
    for target in targets:
        found = _judge(target, answers[target.key], chosen[target.key.hub])
        if found:
            troubled.add((target.family.name, target.key.hub, target.repo))
            problems.update(found)
    for name, why in sorted(asker.down.items()):
        left = sum(1 for k, a in answers.items() if k.hub == name and a.status == UNREACHABLE)
        problems.add(
            Problem(
                chosen[name].endpoint() or name,
                0,
                0,
                "E408",
                f"hub {name} cannot be reached, {left} repositories not checked: {why}",
            )
        )
    report.problems = sorted(problems)
    if options.fix:
        report.written, report.write_failures = _fix(
            families, targets, answers, troubled, locks, chosen
        )
    return report


# -- what to ask -------------------------------------------------------------------------------


def _where(family: Family, source: Source | None = None) -> Location:
    return (source.location if source else None) or family.location or Location(family.name)


def _problem(location: Location, code: str, message: str) -> Problem:
    return Problem(location.path, location.line, location.column, code, message)


def _family_lock(family: Family) -> tuple[FamilyLock | None, list[Problem]]:
    """The family's lock read strictly (building the family ignored a broken one)."""
    folder = _folder(family)
    if folder is None:
        return None, []
    try:
        return read_lock(lock_path(folder, family.name)), []
    except LockError as error:
        return None, [Problem(str(lock_path(folder, family.name)), 0, 0, "E410", str(error))]


def _folder(family: Family) -> Path | None:
    """The catalog folder the family's spec file is in (its lock sits next to it)."""
    return Path(family.location.path).parent if family.location is not None else None


def _target(
    family: Family, spec: Spec, source: Source, q: str, hub: Hub, fix: bool
) -> _Target | Problem:
    repo = source.repo_for(q)
    try:
        hub.check_repo_id(repo)
    except Exception as error:  # a hub plugin's check that fails is still one line
        return _problem(_where(family, source), "E409", f"{source.hub}: {error}")
    locked = None if fix else source.locked_repo(q)
    revision = locked.commit if locked is not None else source.revision
    key = Key(source.hub, hub.endpoint(), repo, revision)
    return _Target(family, spec, source, q, repo, key, locked)


def _stale(family: Family, lock: FamilyLock | None, hubs: Mapping[str, Hub]) -> list[Problem]:
    """Lock entries no download uses: for a repository the spec no longer names, or made for
    a revision the spec no longer asks for."""
    if lock is None:
        return []
    named: dict[tuple[str, str], list[Source]] = {}
    for spec in family.specs:
        for source in spec.sources:
            for q in source.quantizations:
                named.setdefault((source.hub, source.repo_for(q)), []).append(source)
    found = []
    for entry in lock.repos:
        if entry.hub not in hubs:
            continue
        users = named.get((entry.hub, entry.repo))
        if not users:
            found.append(
                _problem(
                    _where(family),
                    "E407",
                    f"the lock has {entry.hub} {entry.repo}, which no source of {family.name} "
                    "names any more (run `zoo catalog check --fix`)",
                )
            )
            continue
        for source in {id(s): s for s in users}.values():  # Sources hold dicts: no hash
            if source.revision != entry.asked:
                found.append(
                    _problem(
                        _where(family, source),
                        "E407",
                        f"{entry.hub}: {entry.repo}: the lock was made for revision "
                        f"{entry.asked or 'the default branch'}, the spec asks for "
                        f"{source.revision or 'the default branch'} (run `zoo catalog check "
                        "--fix`)",
                    )
                )
    return found


# -- judging the answers -----------------------------------------------------------------------


def _exact_files(target: _Target, hub: Hub) -> tuple[str, ...] | None:
    """The files a download fetches when the source names them; None: from the listing."""
    from zoo.resolve import file_selection

    selection = file_selection(target.spec, target.source, target.quantization, {hub.name: hub})
    return selection.exact


def _judge(target: _Target, answer: Answer, hub: Hub) -> list[Problem]:
    where = _where(target.family, target.source)
    at = f"{target.key.hub}: {target.repo}@{target.key.revision or 'default'}"
    q = target.quantization
    if answer.status == UNREACHABLE:
        return []  # one line for the hub, not one per source
    if answer.status == NO_REPO:
        return [_problem(where, "E401", f"{target.key.hub}: repository {target.repo} not found")]
    if answer.status == NO_REVISION:
        if target.locked is not None:
            message = (
                f"{at}: the commit the lock pinned {target.locked.asked or 'the default branch'}"
                " to is not on the hub (run `zoo catalog check --fix`)"
            )
        else:
            message = f"{target.key.hub}: {target.repo}: revision {target.key.revision} not found"
        return [_problem(where, "E402", message)]
    if answer.status != OK:
        return [_problem(where, "E409", f"{at}: {answer.message}")]
    found: list[Problem] = []
    if answer.rejected:
        shown = "; ".join(answer.rejected[:3])
        more = f" (and {len(answer.rejected) - 3} more)" if len(answer.rejected) > 3 else ""
        found.append(
            _problem(where, "E409", f"{at}: the listing has entries zoo refuses: {shown}{more}")
        )
    exact = _exact_files(target, hub)
    if exact is not None:
        found += _judge_exact(target, answer, exact, where, at)
        needed = [answer.file(p) for p in exact]
        found += _against_lock(target, [f for f in needed if f is not None], where, at)
        return found
    try:
        chosen = _selected(target, answer, remote_code=True)
    except Exception as error:  # HubError: no config.json, no weights
        return [*found, _problem(where, "E405", f"{q}: {error}")]
    found += _against_lock(target, chosen, where, at, whole=True)
    return found


def _selected(target: _Target, answer: Answer, *, remote_code: bool) -> tuple[RemoteFile, ...]:
    from zoo.hubs.select import select_weights

    return select_weights(
        answer.files,
        hub=target.key.hub,
        repo=target.repo,
        exclude=target.source.exclude,
        remote_code=remote_code,
    )


def _judge_exact(
    target: _Target, answer: Answer, exact: Sequence[str], where: Location, at: str
) -> list[Problem]:
    source, q = target.source, target.quantization
    listed = {f.path for f in answer.files}
    found: list[Problem] = []
    split = source.split is not None and q in source.split.parts
    weights = source.files_for(q)
    if split:
        assert source.split is not None
        template = source.split.template.replace(QUANTIZATION_PLACEHOLDER, q)
        on_hub = _parts_on_hub(template, listed)
        if on_hub and set(on_hub) != set(weights):
            found.append(
                _problem(
                    where,
                    "E404",
                    f"{at}: {q} is split in {_count(on_hub)} parts on the hub "
                    f"({_names(on_hub)}), the spec lists {len(weights)}",
                )
            )
        elif not on_hub and any(w not in listed for w in weights):
            # Parts named otherwise (``.gguf.a``, ``.gguf.b``): each named part must be there.
            found.append(_missing(where, at, q, [w for w in weights if w not in listed]))
    elif weights:
        name = weights[0]
        if name not in listed:
            stem, dot, suffix = name.rpartition(".")
            pattern = f"{stem}-{PART_PLACEHOLDER}.{suffix}" if dot else f"{name}-{PART_PLACEHOLDER}"
            on_hub = _parts_on_hub(pattern, listed)
            if on_hub:
                message = (
                    f"{at}: {q} is split in {_count(on_hub)} parts on the hub "
                    f"({_names(on_hub)}), the spec names one file {name}"
                )
                found.append(_problem(where, "E404", message))
            else:
                found.append(_missing(where, at, q, [name]))
    others = [p for p in (*exact, *source.multimodal_projectors) if p not in weights]
    absent = [p for p in dict.fromkeys(others) if p not in listed]
    if absent:
        found.append(_missing(where, at, q, absent))
    return found


def _missing(where: Location, at: str, q: str, paths: Sequence[str]) -> Problem:
    files = ", ".join(paths[:4]) + (f" (and {len(paths) - 4} more)" if len(paths) > 4 else "")
    return _problem(where, "E403", f"{at}: {q}: not on the hub: {files}")


def _parts_on_hub(template: str, listed: set[str]) -> list[str]:
    """The listed files that are parts of ``template`` (``{part}`` as NNNNN-of-MMMMM)."""
    before, _, after = template.partition(PART_PLACEHOLDER)
    pattern = re.compile(re.escape(before) + r"[0-9]+-of-[0-9]+" + re.escape(after))
    return sorted(p for p in listed if pattern.fullmatch(p))


_OF = re.compile(r"-of-([0-9]+)")


def _count(parts: Sequence[str]) -> int:
    """How many parts the hub says there are: the largest ``-of-N``, at least those listed."""
    totals = [int(m.group(1)) for p in parts for m in [_OF.search(p)] if m is not None]
    return max([len(parts), *totals])


def _names(parts: Sequence[str]) -> str:
    shown = [p.rsplit("/", 1)[-1] for p in parts[:2]]
    return ", ".join(shown) + (", ..." if len(parts) > 2 else "")


def _against_lock(
    target: _Target,
    files: Sequence[RemoteFile],
    where: Location,
    at: str,
    *,
    whole: bool = False,
) -> list[Problem]:
    """Sizes and sha256 of ``files`` against the lock the download uses; ``whole``: the
    lock's files for this repository are the selection, so one the hub lacks is reported."""
    locked = target.locked
    if locked is None:
        return []
    found = []
    for remote in files:
        record = locked.files.get(remote.path)
        if record is None:
            continue
        if remote.size is not None and remote.size != record.size:
            found.append(
                _problem(
                    where,
                    "E406",
                    f"{at}: {remote.path} is {remote.size} bytes on the hub, the lock says "
                    f"{record.size}",
                )
            )
        if remote.sha256 and record.sha256 and remote.sha256 != record.sha256:
            found.append(
                _problem(
                    where,
                    "E406",
                    f"{at}: {remote.path} has sha256 {remote.sha256[:12]}... on the hub, the lock "
                    f"says {record.sha256[:12]}...",
                )
            )
    if whole:
        found += _selection_against_lock(target, locked, files, where, at)
    return found


def _selection_against_lock(
    target: _Target,
    locked: LockedRepo,
    files: Sequence[RemoteFile],
    where: Location,
    at: str,
) -> list[Problem]:
    """The files the selection rule takes from the lock's record against those it takes from
    the hub now: they differ when the repository changed or the spec's ``exclude`` did. Only
    this source's selection counts: a repository that a GGUF spec and a pytorch spec share
    records both specs' files in one lock entry."""
    from zoo.hubs.locked import locked_files
    from zoo.plan import FileSelection

    rule = FileSelection(exclude=tuple(target.source.exclude), remote_code=True)
    recorded = locked_files(locked, rule, hub=target.key.hub)
    have = {f.path for f in files}
    mine = {f.path for f in recorded} if recorded is not None else set()
    gone = sorted(mine - have)
    new = sorted(have - mine)
    found = []
    if gone:
        found.append(
            _problem(
                where,
                "E406",
                f"{at}: the lock records {', '.join(gone[:3])}, which the hub's selection "
                "does not have (run `zoo catalog check --fix`)",
            )
        )
    if new:
        found.append(
            _problem(
                where,
                "E406",
                f"{at}: the hub's selection has {', '.join(new[:3])}, which the lock does not "
                "record (the repository or the spec's exclude changed: run `zoo catalog check "
                "--fix`)",
            )
        )
    return found


# -- --fix -------------------------------------------------------------------------------------


def _fix(
    families: Sequence[Family],
    targets: Sequence[_Target],
    answers: Mapping[Key, Answer],
    troubled: set[tuple[str, str, str]],
    locks: Mapping[str, FamilyLock | None],
    hubs: Mapping[str, Hub],
) -> tuple[list[str], int]:
    """Write the lock of every checked family: a fresh entry per repository without problems;
    entries of repositories not checked now (another hub, or a problem) kept while they still
    apply; stale ones dropped. One line per family saying what was written, and how many lock
    files could not be written (the command then fails: a lock the user asked for is missing)."""
    from zoo.catalog.lock import write_lock

    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    lines = []
    failures = 0
    for family in families:
        folder = _folder(family)
        mine = [t for t in targets if t.family is family]
        if folder is None or not mine:
            continue
        old = locks.get(family.name)
        fresh: dict[tuple[str, str], LockedRepo] = {}
        skipped: list[str] = []
        by_repo: dict[tuple[str, str], list[_Target]] = {}
        for target in mine:
            by_repo.setdefault((target.key.hub, target.repo), []).append(target)
        for (hub_name, repo), group in sorted(by_repo.items()):
            answer = answers[group[0].key]
            # Unanswered (its hub down) or with a problem: the old entry stays if it applies.
            if answer.status != OK or (family.name, hub_name, repo) in troubled:
                continue
            entry = _entry(group, answer, hubs[hub_name], today)
            if isinstance(entry, str):
                skipped.append(f"{hub_name} {repo}: {entry}")
            else:
                fresh[(hub_name, repo)] = entry
        kept = [
            entry
            for entry in (old.repos if old is not None else ())
            if (entry.hub, entry.repo) not in fresh and _still_applies(family, entry)
        ]
        if not fresh and not kept and old is None:
            if skipped:
                lines.append(f"{family.name}: nothing pinned ({'; '.join(skipped[:3])})")
            continue
        path = lock_path(folder, family.name)
        try:
            write_lock(path, FamilyLock(family.name, tuple(fresh.values()) + tuple(kept)))
        except OSError as error:
            lines.append(f"{family.name}: cannot write {path}: {error.strerror or error}")
            failures += 1
            continue
        line = f"wrote {path}: {len(fresh)} repositories pinned"
        if kept:
            line += f", {len(kept)} kept from the old lock"
        if skipped:
            line += f", {len(skipped)} not pinned ({'; '.join(skipped[:3])})"
        lines.append(line)
    return lines, failures


def _entry(group: Sequence[_Target], answer: Answer, hub: Hub, today: str) -> LockedRepo | str:
    """The lock entry of one repository, or why it gets none."""
    asked = {t.source.revision for t in group}
    if len(asked) > 1:
        return "its sources ask for different revisions"
    revision = group[0].source.revision
    commit = answer.commit or (revision if is_commit(revision) else None)
    if commit is None:
        return "the hub names no commit to pin"
    files: dict[str, LockedFile] = {}
    for target in group:
        exact = _exact_files(target, hub)
        chosen = (
            [f for f in map(answer.file, exact) if f is not None]
            if exact is not None
            else list(_selected(target, answer, remote_code=True))
        )
        for remote in chosen:
            if remote.size is None:
                return f"the hub gives no size for {remote.path}"
            files[remote.path] = LockedFile(remote.size, remote.sha256)
    return LockedRepo(hub.name, group[0].repo, revision, commit, today, files)


def _still_applies(family: Family, entry: LockedRepo) -> bool:
    return any(
        source.hub == entry.hub
        and source.revision == entry.asked
        and any(source.repo_for(q) == entry.repo for q in source.quantizations)
        for spec in family.specs
        for source in spec.sources
    )
