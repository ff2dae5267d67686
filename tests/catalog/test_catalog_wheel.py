"""An installed zoo finds its built-in catalog without the source tree.

Builds the real wheel, installs it into a fresh virtual environment (its dependencies are
borrowed from the test environment through a .pth file, so nothing else is downloaded) and
runs the installed ``zoo`` from a folder outside the repository.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_wheel_ships_the_catalog_and_an_installed_zoo_lists_it(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        # No build isolation: the dev environment has the build backend (setuptools, a dev
        # dependency), so the test neither downloads it nor depends on the network.
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(ROOT),
        ],
        check=True,
        timeout=600,
    )
    (wheel,) = wheels.glob("zoo_launcher-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(n for n in names if n.startswith("zoo/_builtin_specs/"))
    assert "zoo/_builtin_specs/seed-oss.yaml" in shipped
    assert len([n for n in shipped if n.endswith(".yaml")]) == len(
        list((ROOT / "specs").glob("*.yaml"))
    )
    # The lock files (zoo.catalog.lock) ship with the specs they pin.
    locks = sorted(p.name for p in (ROOT / "specs" / "locks").glob("*.json"))
    assert sorted(n.rsplit("/", 1)[-1] for n in shipped if "/locks/" in n) == locks
    assert "zoo/catalog/spec.schema.json" in names
    # The web UI's templates and static files ship too: nothing is built at install time.
    ui = ROOT / "zoo" / "serve" / "ui"
    for folder in ("templates", "static"):
        files = sorted(p.name for p in (ui / folder).iterdir() if p.is_file())
        assert files, folder
        assert {f"zoo/serve/ui/{folder}/{f}" for f in files} <= set(names), folder

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    target = (
        venv
        / "lib"
        / f"python{sys.version_info.major}.{sys.version_info.minor}"
        / ("site-packages")
    )
    (target / "borrowed-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ZOO_CATALOG_PATH")}
    env["ZOO_HOME"] = str(tmp_path / "home")
    listed = subprocess.run(
        [str(venv / "bin" / "zoo"), "list", "--json"],
        cwd=outside,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    document = json.loads(listed.stdout)
    names_listed = {f["name"] for f in document["families"]}
    assert {"seed-oss", "seed-coder-8b-base", "smollm2-135m-instruct"} <= names_listed
    location = next(f["location"] for f in document["families"] if f["name"] == "seed-oss")
    assert location.startswith(str(target / "zoo" / "_builtin_specs"))
    where = subprocess.run(
        [str(python), "-c", "import zoo; print(zoo.__file__)"],
        cwd=outside,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.strip().startswith(str(target))  # not the source tree
    schema = subprocess.run(
        [str(python), "-m", "zoo", "schema"],
        cwd=outside,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(schema.stdout)["title"] == "zoo model family spec"
