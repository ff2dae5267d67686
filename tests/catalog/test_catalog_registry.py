"""The registry: where families come from, which one wins, and the compiled cache."""

from __future__ import annotations

from pathlib import Path

import pytest
from catalog_helpers import family_text, write

from zoo import hookimpl
from zoo.catalog import catalog as catalog_module
from zoo.catalog import validate
from zoo.catalog.catalog import builtin_catalog_dir, load_catalog
from zoo.errors import NotFoundError
from zoo.paths import user_catalog_dir
from zoo.plugins import new_plugin_manager
from zoo.registry import catalog_with_plugins

BUILTIN = {
    "seed-coder-8b-base",
    "seed-coder-8b-instruct",
    "seed-coder-8b-reasoning",
    "seed-oss",
    "smollm2-135m-instruct",
}


def test_the_builtin_catalog_loads_with_the_seed_families() -> None:
    catalog = load_catalog()
    assert set(catalog.families) >= BUILTIN
    assert list(catalog.families) == sorted(catalog.families)
    own = [p for p in catalog.problems if Path(p.path).name.removesuffix(".yaml") in BUILTIN]
    assert own == []


def test_user_folder_environment_and_plugin_folders_all_contribute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(user_catalog_dir(), "mine.yaml", family_text("mine"))
    first, second = tmp_path / "env1", tmp_path / "env2"
    write(first, "env-one.yaml", family_text("env-one"))
    write(second, "env-two.yml", family_text("env-two"))
    monkeypatch.setenv("ZOO_CATALOG_PATH", f"{first}:{second}:{tmp_path / 'missing'}")
    plugin_dir = write(tmp_path / "plugin", "from-plugin.yaml", family_text("from-plugin")).parent

    class Plugin:
        @hookimpl
        def zoo_catalog_paths(self) -> list[Path]:
            return [plugin_dir]

    pm = new_plugin_manager(load_entry_points=False)
    pm.register(Plugin())
    catalog = catalog_with_plugins(pm=pm)
    assert {"mine", "env-one", "env-two", "from-plugin"} <= set(catalog.families)
    assert catalog.sources[:2] == [builtin_catalog_dir(), user_catalog_dir()]
    assert catalog.sources[-1] == plugin_dir


def test_a_family_defined_twice_is_reported_at_both_places_and_the_first_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(user_catalog_dir(), "a.yaml", family_text("twin"))
    later = write(tmp_path / "env", "b.yaml", family_text("twin").replace("Family twin.", "Later."))
    monkeypatch.setenv("ZOO_CATALOG_PATH", str(later.parent))
    catalog = load_catalog()
    assert catalog.get("twin").description == "Family twin."
    duplicates = [p for p in catalog.problems if p.code == "E306"]
    assert sorted(str(p) for p in duplicates) == sorted(
        [
            (
                f"{later}:2:7: error[E306]: family 'twin' is already defined at "
                f"{user_catalog_dir() / 'a.yaml'}:2:7 (the first definition wins)"
            ),
            (
                f"{user_catalog_dir() / 'a.yaml'}:2:7: error[E306]: family 'twin' is defined "
                f"again at {later}:2:7"
            ),
        ]
    )


def test_a_broken_file_is_reported_and_skipped(tmp_path: Path) -> None:
    folder = tmp_path / "specs"
    write(folder, "good.yaml", family_text("good"))
    write(folder, "bad.yaml", "name: [unclosed\n")
    (folder / "binary.yaml").write_bytes(b"\x00\x01")
    write(folder, "notes.txt", "not a spec")
    catalog = load_catalog([folder])
    assert list(catalog.families) == ["good"]
    assert sorted(Path(p.path).name for p in catalog.errors) == ["bad.yaml", "binary.yaml"]


def test_unknown_names_get_a_did_you_mean() -> None:
    catalog = load_catalog()
    with pytest.raises(NotFoundError, match=r"unknown model 'seed-os' \(did you mean seed-oss"):
        catalog.get("seed-os")
    assert catalog.get("Seed-OSS").name == "seed-oss"


def test_search_ranks_name_matches_first() -> None:
    catalog = load_catalog([builtin_catalog_dir() / f"{name}.yaml" for name in sorted(BUILTIN)])
    names = [f.name for f in catalog.search("seed coder")]
    assert names[:3] == ["seed-coder-8b-base", "seed-coder-8b-instruct", "seed-coder-8b-reasoning"]
    assert [f.name for f in catalog.search("fim")] == ["seed-coder-8b-base"]
    assert [f.name for f in catalog.search("QuantTrio")] == ["seed-oss"]
    assert catalog.search("no such words anywhere") == []


def test_unchanged_files_come_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "specs"
    spec = write(folder, "one.yaml", family_text("one"))
    assert list(load_catalog([folder]).families) == ["one"]

    def no_parsing(*args: object, **kwargs: object) -> None:
        raise AssertionError("an unchanged file was parsed again")

    monkeypatch.setattr(validate, "check_file", no_parsing)
    assert list(load_catalog([folder]).families) == ["one"]
    monkeypatch.undo()
    spec.write_text(family_text("renamed"), encoding="utf-8")
    assert list(load_catalog([folder]).families) == ["renamed"]


def test_problems_of_broken_files_are_cached_too(tmp_path: Path) -> None:
    folder = tmp_path / "specs"
    write(
        folder, "bad.yaml", family_text("bad").replace("context_length: 2048", "context_length: 0")
    )
    first = load_catalog([folder]).problems
    assert [p.code for p in first] == ["E202"]
    assert load_catalog([folder]).problems == first


def test_a_corrupt_cache_is_rebuilt(tmp_path: Path, isolated_zoo: Path) -> None:
    folder = tmp_path / "specs"
    write(folder, "one.yaml", family_text("one"))
    load_catalog([folder])
    (cache_file,) = (isolated_zoo / "cache").glob("catalog-*.json")
    cache_file.write_text("{not json", encoding="utf-8")
    assert list(load_catalog([folder]).families) == ["one"]
    cache_file.write_text('{"format": 1, "fingerprint": "old", "files": {}}', encoding="utf-8")
    assert list(load_catalog([folder]).families) == ["one"]


def test_plugin_folders_are_cached_until_distributions_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    plugin_dir = write(tmp_path / "plugin", "p.yaml", family_text("plugged")).parent

    def fake_paths(pm: object = None) -> list[Path]:
        calls.append(1)
        return [plugin_dir]

    import zoo.plugins
    import zoo.registry

    monkeypatch.setattr(zoo.plugins, "get_catalog_paths", fake_paths)
    site = tmp_path / "site-packages"
    site.mkdir()
    monkeypatch.setattr(zoo.registry, "site_dirs", lambda: [str(site)])
    assert "plugged" in catalog_with_plugins().families
    assert "plugged" in catalog_with_plugins().families
    assert len(calls) == 1
    (site / "newdist-1.0.dist-info").mkdir()  # installing a distribution changes the folder
    import os

    os.utime(site, ns=(0, 10**18))
    assert "plugged" in catalog_with_plugins().families
    assert len(calls) == 2


def test_the_cache_never_slows_a_read_only_cache_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("x")
    monkeypatch.setenv("ZOO_CACHE_DIR", str(blocked))
    folder = tmp_path / "specs"
    write(folder, "one.yaml", family_text("one"))
    assert list(load_catalog([folder]).families) == ["one"]


def test_cheap_summaries_agree_with_the_built_families() -> None:
    from zoo.catalog.views import family_summary

    catalog = load_catalog()
    assert len(catalog) > 0
    cheap = catalog.summaries()
    built = [family_summary(family) for family in catalog.families.values()]
    assert cheap == built


def test_families_are_built_only_when_asked_for(tmp_path: Path) -> None:
    folder = tmp_path / "specs"
    write(folder, "one.yaml", family_text("one"))
    write(folder, "two.yaml", family_text("two"))
    catalog = load_catalog([folder])
    assert [s["name"] for s in catalog.summaries()] == ["one", "two"]
    index = catalog.families
    assert isinstance(index, catalog_module.FamilyIndex)
    assert index._built == {}
    assert "one" in index and "three" not in index
    assert catalog.get("two") is catalog.get("two")
    assert list(index._built) == ["two"]


def test_a_large_batch_is_checked_in_worker_processes_with_the_same_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = [write(tmp_path, f"fam-{i:03d}", family_text(f"fam-{i:03d}")) for i in range(80)]
    files.append(write(tmp_path, "broken", "name: [unclosed\n"))
    parallel = catalog_module.check_files(files)
    monkeypatch.setattr(catalog_module, "PARALLEL_MIN_FILES", 10**9)
    sequential = catalog_module.check_files(files)
    assert [(r.path, r.data, r.problems) for r in parallel] == [
        (r.path, r.data, r.problems) for r in sequential
    ]
    assert [r.ok for r in parallel].count(False) == 1


def test_the_catalog_is_given_plugin_folders_and_never_asks_plugins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import zoo.plugins

    def forbidden(*args: object, **kwargs: object) -> list[Path]:
        raise AssertionError("the catalog asked the plugins")

    monkeypatch.setattr(zoo.plugins, "get_catalog_paths", forbidden)
    monkeypatch.setattr(zoo.plugins, "plugin_manager", forbidden)
    given = write(tmp_path / "plugin", "given.yaml", family_text("given")).parent
    catalog = load_catalog(plugin_dirs=[given])
    assert "given" in catalog.families and catalog.sources[-1] == given
    assert "given" not in load_catalog().families  # no folders given: none asked for


def test_the_catalog_package_does_not_import_the_plugin_layer() -> None:
    # Layering, checked on the source: no module of zoo.catalog imports zoo.plugins (or pluggy).
    import ast

    package = Path(catalog_module.__file__).parent
    for module in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(("zoo.plugins", "pluggy", "zoo.registry")), (
                    module.name,
                    name,
                )


def test_every_command_loads_the_catalog_with_the_plugin_folders() -> None:
    # The callers go through zoo.registry; calling the catalog's loader without the plugin
    # folders would drop the families plugins ship.
    import ast

    root = Path(catalog_module.__file__).parents[1]
    callers = [*sorted((root / "cli").glob("*.py")), *sorted((root / "docs").glob("*.py"))]
    callers += [root / "demo.py", root / "launch.py"]
    for module in callers:
        if not module.exists():
            continue
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "zoo.catalog.catalog":
                assert "load_catalog" not in {a.name for a in node.names}, module
