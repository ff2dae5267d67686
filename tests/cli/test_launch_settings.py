"""`zoo launch` takes its host, port and API key from the settings file when no flag (or
$ZOO_API_KEY) says otherwise: the dry run shows what the launch would use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zoo.cli.app import main

SMOL = "smollm2-135m-instruct"


def _plan(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    with pytest.raises(SystemExit) as done:
        main(["launch", SMOL, "--json", "--hub", "pypi", *args])
    out, err = capsys.readouterr()
    assert done.value.code == 0, err
    options = json.loads(out)["options"]
    assert isinstance(options, dict)
    return options


def test_the_file_sets_host_port_and_key(
    config_file: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    assert _plan(capsys)["port"] is None
    key = tmp_path / "key"
    key.write_text("s3cret\n")
    key.chmod(0o600)
    config_file.write_text(f'host = "127.0.0.2"\nport = 8123\napi_key_file = "{key}"\n')
    options = _plan(capsys)
    assert (options["host"], options["port"], options["api_key"]) == ("127.0.0.2", 8123, "***")
    # A flag beats the file; the key never shows.
    options = _plan(capsys, "--port", "8124", "--host", "127.0.0.1")
    assert (options["host"], options["port"]) == ("127.0.0.1", 8124)
    out = json.dumps(options)
    assert "s3cret" not in out
