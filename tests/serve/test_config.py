"""The gateway config: a valid file gives the GatewayConfig it says, and every kind of problem
is reported at its own line and column, all of them at once, with no key ever shown."""

from __future__ import annotations

import json
import math
import os
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from zoo.catalog.catalog import Catalog, builtin_catalog_dir, load_catalog
from zoo.catalog.model import FORMATS
from zoo.errors import ZooError
from zoo.serve.config import (
    CODES,
    DEFAULT_CONCURRENCY,
    DEFAULT_HOST,
    DEFAULT_KEEP_ALIVE,
    DEFAULT_PORT,
    SCHEMA_FILE,
    ApiKey,
    ConfigError,
    GatewayConfig,
    config_schema,
    default_config,
    load_config,
    parse_duration,
    parse_size,
)
from zoo.serve.types import ModelEntry

T = TypeVar("T")
ENGINES = ("llamacpp", "transformers", "vllm", "mlx")
HUBS = ("huggingface", "modelscope", "pypi")

EXAMPLE = """\
# yaml-language-server: $schema=config.schema.json
listen: {host: 127.0.0.1, port: 11500}
keep_alive: 1h30m
concurrency: 3
memory_budget: 12GiB
allow_download: true
api_keys:
  - key_env: ZOO_TEAM_KEY
    models: [smollm2-135m-instruct, coder]
  - key_file: team.key
models:
  smol:
    family: smollm2-135m-instruct
    aliases: [tiny, "smollm2:135m"]
    engine: llamacpp
    quantization: q4_1
    hub: pypi
    context: 4096
    engine_args: ["--threads", "2"]
    keep_alive: 10m
    pinned: true
    preload: true
    concurrency: 4
  coder:
    family: seed-oss
    format: ggufv2
    size: 36
    quantization: Q4_K_M
    keep_alive: -1
  qwen3:
"""


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog([builtin_catalog_dir()], use_cache=False)


def write(tmp_path: Path, text: str, name: str = "gateway.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(path: Path, catalog: Catalog, environ: dict[str, str] | None = None) -> GatewayConfig:
    return load_config(path, catalog, engines=ENGINES, hubs=HUBS, environ=environ or {})


def problems_of(path: Path, catalog: Catalog, environ: dict[str, str] | None = None) -> list[str]:
    """Every problem as ``line:col code message`` (the path cut off)."""
    with pytest.raises(ConfigError) as caught:
        load(path, catalog, environ)
    prefix = f"{path}:"
    lines = [str(p) for p in caught.value.problems]
    assert all(line.startswith(prefix) for line in lines), lines
    # The message lists every problem, one a line, after its first line.
    assert str(caught.value).splitlines()[1:] == [f"  {line}" for line in lines]
    return [line[len(prefix) :] for line in lines]


def test_the_example_gives_every_value_it_sets(tmp_path: Path, catalog: Catalog) -> None:
    path = write(tmp_path, EXAMPLE)
    key_file = tmp_path / "team.key"
    key_file.write_text("file-key-123\n")
    key_file.chmod(0o600)
    config = load(path, catalog, {"ZOO_TEAM_KEY": "env-key-456"})
    assert (config.host, config.port) == ("127.0.0.1", 11500)
    assert config.keep_alive == 5400.0
    assert config.concurrency == 3
    assert config.memory_budget == 12 * 1024**3
    assert config.allow_download is True
    assert config.api_keys == (
        ApiKey("env-key-456", ("smollm2-135m-instruct", "coder"), "$ZOO_TEAM_KEY"),
        ApiKey("file-key-123", (), "team.key"),
    )
    assert list(config.models) == ["smol", "coder", "qwen3"]
    assert config.models["smol"] == ModelEntry(
        name="smol",
        family="smollm2-135m-instruct",
        aliases=("tiny", "smollm2:135m"),
        engine="llamacpp",
        quantization="Q4_1",  # as the catalog spells it
        hub="pypi",
        context_length=4096,
        engine_args=("--threads", "2"),
        keep_alive=600.0,
        pinned=True,
        preload=True,
        concurrency=4,
        download=True,
    )
    coder = config.models["coder"]
    assert (coder.family, coder.format, coder.size, coder.quantization, coder.keep_alive) == (
        "seed-oss",
        "ggufv2",
        36.0,
        "Q4_K_M",
        -1.0,
    )
    # `qwen3:` alone: every default, its family its name; listed, so it may be downloaded.
    assert config.models["qwen3"] == ModelEntry(name="qwen3", family="qwen3", download=True)
    assert config.warnings == ()
    with pytest.raises(TypeError):
        config.models["new"] = config.models["smol"]  # type: ignore[index]


def test_the_example_is_valid_for_editors_too(catalog: Catalog) -> None:
    from jsonschema import Draft202012Validator

    schema = config_schema()
    Draft202012Validator.check_schema(schema)
    assert list(Draft202012Validator(schema).iter_errors(yaml.safe_load(EXAMPLE))) == []
    assert json.loads(SCHEMA_FILE.read_text()) == schema
    # The format choices are the catalog's.
    assert schema["$defs"]["model"]["properties"]["format"]["enum"] == list(FORMATS)


def test_no_file_and_an_empty_file_mean_the_defaults(tmp_path: Path, catalog: Catalog) -> None:
    assert default_config({}) == GatewayConfig()
    defaults = GatewayConfig()
    assert (defaults.host, defaults.port) == (DEFAULT_HOST, DEFAULT_PORT) == ("127.0.0.1", 11435)
    assert (defaults.keep_alive, defaults.concurrency) == (DEFAULT_KEEP_ALIVE, DEFAULT_CONCURRENCY)
    assert (defaults.memory_budget, defaults.allow_download, defaults.api_keys) == (None, False, ())
    for text in ("", "# yaml-language-server: $schema=x.json\n\n", "---\n"):
        config = load(write(tmp_path, text), catalog)
        assert config == GatewayConfig(path=str(tmp_path / "gateway.yaml")), text


def test_zoo_api_key_is_one_more_key_for_every_model(tmp_path: Path, catalog: Catalog) -> None:
    env = {"ZOO_API_KEY": " env-key \n"}
    assert default_config(env).api_keys == (ApiKey("env-key", (), "$ZOO_API_KEY"),)
    config = load(write(tmp_path, "api_keys: [{key_env: TEAM}]\n"), catalog, {**env, "TEAM": "t"})
    assert [k.key for k in config.api_keys] == ["t", "env-key"]
    with pytest.raises(
        ConfigError, match=r"^\$ZOO_API_KEY: error\[E407\]: the key has spaces"
    ) as caught:
        default_config({"ZOO_API_KEY": "two words"})
    assert "two words" not in str(caught.value)


def test_api_key_scopes_allow_names_aliases_families_and_narrowed_names() -> None:
    entry = ModelEntry("coder", "seed-oss", aliases=("c",))
    assert ApiKey("k").allows(entry)
    assert ApiKey("k", ("coder",)).allows(entry)
    assert ApiKey("k", ("c",)).allows(entry)
    assert ApiKey("k", ("seed-oss",)).allows(entry)
    assert ApiKey("k", ("coder",)).allows(ModelEntry("coder:Q8_0", "seed-oss"))
    assert not ApiKey("k", ("smol",)).allows(entry)
    assert "secret" not in repr(ApiKey("secret", ("smol",)))


# code, config text, line, column, words in the message
CASES = [
    ("E101", "models: [smol\n", 2, 1, "flow sequence"),
    ("E102", "concurrency: 2\nconcurrency: 3\n", 2, 1, "duplicate key 'concurrency'"),
    ("E200", "concurrency: many\n", 1, 14, "concurrency must be an integer, not a string"),
    ("E200", "models:\n  smol: [a]\n", 2, 9, "models.smol must be a mapping or empty, not a list"),
    ("E200", "api_keys: []\n", 1, 11, "api_keys must not be empty"),
    ("E200", "models:\n  smol:\n    aliases: [a, a]\n", 3, 14, "lists the same value twice"),
    ("E201", "keepalive: 5m\n", 1, 1, "unknown key 'keepalive' (did you mean 'keep_alive'?)"),
    (
        "E201",
        "models:\n  smol:\n    quantisation: Q4_1\n",
        3,
        5,
        "unknown key 'quantisation' in models.smol (did you mean 'quantization'?)",
    ),
    ("E202", "listen: {port: 70000}\n", 1, 16, "listen.port must be at most 65535, not 70000"),
    ("E202", "concurrency: 0\n", 1, 14, "concurrency must be at least 1, not 0"),
    (
        "E203",
        "models:\n  seed-oss:\n    format: gguf\n",
        3,
        13,
        "models.seed-oss.format: 'gguf' is not allowed (did you mean 'ggufv2'?)",
    ),
    ("E204", "models:\n  'bad name':\n", 2, 3, "'bad name' in models is not a model name"),
    (
        "E204",
        "models:\n  qwen3:\n    aliases: [ok, -no]\n",
        3,
        19,
        "models.qwen3.aliases[1]: '-no' is not a model name",
    ),
    (
        "E204",
        "api_keys:\n  - key_env: 1BAD\n",
        2,
        14,
        "api_keys[0].key_env: '1BAD' is not an environment variable name",
    ),
    (
        "E400",
        "models:\n  smol:\n    family: smollm2-135m-instuct\n",
        3,
        13,
        "unknown model family 'smollm2-135m-instuct' (did you mean smollm2-135m-instruct",
    ),
    (
        "E400",
        "models:\n  smol: {}\n",
        2,
        3,
        "'smol' is not a catalog family: set `family:` to the one it serves",
    ),
    (
        "E401",
        "models:\n  qwen3: {aliases: [q]}\n  seed-oss: {aliases: [x, q]}\n",
        3,
        27,
        "alias 'q' of model 'seed-oss' is already an alias of model 'qwen3'",
    ),
    (
        "E401",
        "models:\n  qwen3: {}\n  seed-oss: {aliases: [qwen3]}\n",
        3,
        24,
        "alias 'qwen3' of model 'seed-oss' is already the name of model 'qwen3'",
    ),
    ("E402", "keep_alive: 5 minutes\n", 1, 13, "keep_alive: '5 minutes' is not a duration"),
    (
        "E402",
        "models:\n  qwen3:\n    keep_alive: soon\n",
        3,
        17,
        "models.qwen3.keep_alive: 'soon' is not a duration",
    ),
    ("E403", "memory_budget: 12G\n", 1, 16, "'12G' is ambiguous: write 12GiB (1024-based) or 12GB"),
    ("E403", "memory_budget: 0\n", 1, 16, "memory_budget must be more than 0"),
    ("E403", "models:\n  qwen3:\n    size: huge\n", 3, 11, "size 'huge' is not a size"),
    ("E403", "models:\n  qwen3:\n    size: -8\n", 3, 11, "size must be more than 0 billion"),
    (
        "E404",
        "models:\n  qwen3:\n    engine: llamacp\n",
        3,
        13,
        "unknown engine 'llamacp' (did you mean 'llamacpp'?)",
    ),
    (
        "E405",
        "models:\n  qwen3:\n    hub: hf\n",
        3,
        10,
        "unknown hub 'hf' (installed: huggingface,",
    ),
    (
        "E405",
        "models:\n  qwen3:\n    hub: pipy\n",
        3,
        10,
        "installed: huggingface, modelscope, pypi",
    ),
    (
        "E406",
        "models:\n  smollm2-135m-instruct:\n    format: mlx\n",
        3,
        13,
        "smollm2-135m-instruct has no mlx format (has: ggufv2)",
    ),
    ("E406", "models:\n  seed-oss:\n    size: 8b\n", 3, 11, "seed-oss has no size 8 (has: 36)"),
    (
        "E406",
        "models:\n  seed-oss:\n    format: awq\n    quantization: Q4_K_M\n",
        4,
        19,
        "seed-oss has no quantization 'Q4_K_M' for that request (has: Int4)",
    ),
    (
        "E406",
        "models:\n  smollm2-135m-instruct:\n    context: 9000\n",
        3,
        14,
        "context 9000 is longer than smollm2-135m-instruct's 8192 tokens",
    ),
    (
        "E407",
        "api_keys:\n  - key_env: NOT_SET\n",
        2,
        14,
        "the environment variable NOT_SET is not set",
    ),
    ("E407", "api_keys:\n  - models: [qwen3]\n", 2, 5, "needs one of key_env, key_file or key"),
    (
        "E407",
        "api_keys:\n  - {key_env: A, key: b}\n",
        2,
        5,
        "api_keys[0] has key_env and key: keep one",
    ),
    ("E407", "api_keys:\n  - key_file: missing.key\n", 2, 15, "key file missing.key: No such file"),
    (
        "E408",
        "models:\n  qwen3: {}\napi_keys:\n  - key_env: K\n    models: [qwen3, qwen4]\n",
        5,
        21,
        "'qwen4' is neither a model of this config nor a catalog family (did you mean qwen3",
    ),
]


@pytest.mark.parametrize(("code", "text", "line", "column", "words"), CASES)
def test_every_problem_kind_is_reported_at_its_position(
    tmp_path: Path, catalog: Catalog, code: str, text: str, line: int, column: int, words: str
) -> None:
    found = problems_of(write(tmp_path, text), catalog, {"K": "key", "A": "key"})
    assert any(p.startswith(f"{line}:{column}: error[{code}]: ") and words in p for p in found), (
        found
    )
    assert code in CODES or code.startswith(("E1", "E2"))


def test_warnings_come_back_with_the_config(tmp_path: Path, catalog: Catalog) -> None:
    (tmp_path / "open.key").write_text("file-key")
    (tmp_path / "open.key").chmod(0o644)
    path = write(
        tmp_path,
        """\
        api_keys:
          - key: literal-key-1
          - key_file: open.key
        models:
          qwen3: {aliases: [qwen3]}
        """,
    )
    config = load(path, catalog)
    assert [str(w).removeprefix(f"{path}:") for w in config.warnings] == [
        (
            "2:10: warning[W400]: a literal key: anyone who can read this file can read it "
            "(use key_env or key_file)"
        ),
        "3:15: warning[W401]: key file open.key can be read by other users (chmod 600 it)",
        "5:21: warning[W402]: alias 'qwen3' is the model's own name",
    ]
    assert [k.key for k in config.api_keys] == ["literal-key-1", "file-key"]
    for code in ("W400", "W401", "W402"):
        assert code in CODES


def test_every_problem_in_a_file_is_listed_at_once(tmp_path: Path, catalog: Catalog) -> None:
    path = write(
        tmp_path,
        """\
        keep_alive: later
        concurency: 2
        models:
          smol:
            family: smollm
            engine: nope
          seed-oss:
            size: 1
            keep_alive: never
        """,
    )
    found = problems_of(path, catalog)
    assert [p.split(": ")[0] + " " + p.split("[")[1][:4] for p in found] == [
        "1:13 E402",
        "2:1 E201",
        "5:13 E400",
        "6:13 E404",
        "8:11 E406",
        "9:17 E402",
    ]
    with pytest.raises(ConfigError, match="has 6 error"):
        load(path, catalog)


def test_reading_problems_are_worded_for_a_config_file(tmp_path: Path, catalog: Catalog) -> None:
    found = problems_of(tmp_path / "missing.yaml", catalog)
    assert found == ["1:1: error[E100]: cannot read the file: No such file or directory"]
    (tmp_path / "folder.yaml").mkdir()
    assert problems_of(tmp_path / "folder.yaml", catalog) == [
        "1:1: error[E100]: a folder, not a config file: skipped"
    ]
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"models:\n\x00")
    assert problems_of(binary, catalog) == [
        "2:1: error[E100]: binary data (a NUL byte): not a YAML file"
    ]
    # A ConfigError is the ZooError the CLI prints as a message, never a traceback.
    assert issubclass(ConfigError, ZooError)
    assert ConfigError.code == "config"


def test_no_message_ever_shows_a_key(tmp_path: Path, catalog: Catalog) -> None:
    secret = "sk-Very Secret"  # noqa: S105 - a made-up key the messages must not show
    (tmp_path / "bad.key").write_text(secret)
    path = write(
        tmp_path,
        f"""\
        api_keys:
          - key: "{secret}"
          - key_env: SPACED
          - key_file: bad.key
          - key: 12345
        """,
    )
    with pytest.raises(ConfigError) as caught:
        load(path, catalog, {"SPACED": secret})
    message = str(caught.value)
    assert secret not in message
    assert "Secret" not in message
    assert "12345" not in message
    assert message.count("has spaces or characters an Authorization header cannot carry") == 3
    assert "api_keys[3].key must be a string, not an integer" in message


def test_a_key_file_is_found_next_to_the_config(tmp_path: Path, catalog: Catalog) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "a.key").write_text("\n  key-a  \n")
    (tmp_path / "keys" / "a.key").chmod(0o600)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    path = write(tmp_path, "api_keys: [{key_file: keys/a.key}]\n")
    cwd = Path.cwd()
    os.chdir(elsewhere)
    try:
        config = load(path, catalog)
    finally:
        os.chdir(cwd)
    assert config.api_keys == (ApiKey("key-a", (), "keys/a.key"),)
    empty = tmp_path / "keys" / "empty.key"
    empty.write_text(" \n")
    empty.chmod(0o600)
    found = problems_of(write(tmp_path, "api_keys: [{key_file: keys/empty.key}]\n"), catalog)
    assert found == ["1:23: error[E407]: the key from keys/empty.key is empty"]


def test_engines_and_hubs_are_not_checked_when_not_given(tmp_path: Path, catalog: Catalog) -> None:
    path = write(tmp_path, "models:\n  qwen3: {engine: someday, hub: mirror}\n")
    config = load_config(path, catalog, environ={})
    assert (config.models["qwen3"].engine, config.models["qwen3"].hub) == ("someday", "mirror")
    with pytest.raises(ConfigError, match=r"unknown engine 'someday' \(none is installed\)"):
        load_config(path, catalog, engines=(), environ={})


def test_sizes_are_the_specs_own_numbers(tmp_path: Path, catalog: Catalog) -> None:
    path = write(
        tmp_path,
        "models:\n  a: {family: smollm2-135m-instruct, size: 135m}\n"
        "  b: {family: qwen3, size: 0.6b}\n  c: {family: qwen3, size: 30}\n",
    )
    models = load(path, catalog).models
    assert [models[n].size for n in "abc"] == [0.135, 0.6, 30.0]


# --- parse_duration / parse_size ----------------------------------------------------------------

DURATIONS = [
    ("5m", 300.0),
    ("300", 300.0),
    (300, 300.0),
    (2.5, 2.5),
    ("-1", -1.0),
    (-1, -1.0),
    ("0", 0.0),
    ("1h30m", 5400.0),
    ("1.5h", 5400.0),
    ("90s", 90.0),
    ("250ms", 0.25),
    ("-1m", -60.0),
    ("+10s", 10.0),
    (" 2d ", 172800.0),
    ("1h1m1s1ms", 3661.001),
    ("10us", 1e-5),
    ("10µs", 1e-5),
]


@pytest.mark.parametrize(("text", "seconds"), DURATIONS)
def test_durations(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["", "-", "5 m", "m", "5x", "1e3", "inf", "nan", "5m-", "1h 30m", True, None, [5]]
)
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError, match=r"duration|seconds"):
        parse_duration(text)


def test_absurd_durations_are_refused() -> None:
    with pytest.raises(ValueError, match="write -1"):
        parse_duration(10**12)
    with pytest.raises(ValueError, match="finite"):
        parse_duration(10**400)
    with pytest.raises(ValueError, match="finite"):
        parse_duration(math.inf)


SIZES = [
    ("12GiB", 12 * 1024**3),
    ("12gib", 12 * 1024**3),
    ("12GB", 12 * 10**9),
    ("512Mi", 512 * 1024**2),
    ("1.5GiB", 3 * 1024**3 // 2),
    ("100", 100),
    (100, 100),
    ("100B", 100),
    ("2 TB", 2 * 10**12),
    (" 4KiB ", 4096),
    ("1PiB", 1024**5),
]


@pytest.mark.parametrize(("text", "size"), SIZES)
def test_sizes(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    "text", ["", "G", "12G", "12 gigs", "-1GB", -5, "1e9", True, None, 1.0e400]
)
def test_bad_sizes(text: object) -> None:
    with pytest.raises(ValueError, match=r"size|ambiguous|negative"):
        parse_size(text)


anything = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="0123456789.-+ hmsdunµiBbKkGgMmTtPp", max_size=20),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
)


@given(anything)
def test_parse_duration_answers_a_finite_number_or_a_value_error(value: object) -> None:
    seconds = _or_error(parse_duration, value)
    if isinstance(seconds, ValueError):
        assert str(seconds)
    else:
        assert isinstance(seconds, float)
        assert math.isfinite(seconds)


@given(anything)
def test_parse_size_answers_bytes_or_a_value_error(value: object) -> None:
    size = _or_error(parse_size, value)
    if isinstance(size, ValueError):
        assert str(size)
    else:
        assert isinstance(size, int)
        assert size >= 0


def _or_error(parse: Callable[[object], T], value: object) -> T | ValueError:
    """What ``parse`` answers; a ValueError comes back as the value, any other error fails."""
    try:
        return parse(value)
    except ValueError as error:
        return error


@given(
    st.integers(0, 1000), st.integers(0, 59), st.integers(0, 59), st.sampled_from(["", "-", "+"])
)
def test_duration_parts_add_up(hours: int, minutes: int, seconds: int, sign: str) -> None:
    text = sign + f"{hours}h{minutes}m{seconds}s"
    expected = hours * 3600 + minutes * 60 + seconds
    assert parse_duration(text) == (-expected if sign == "-" else expected)
    assert parse_duration(str(expected)) == expected


@given(
    st.integers(0, 10**6),
    st.sampled_from(
        [("B", 1), ("KB", 1000), ("KiB", 1024), ("MB", 10**6), ("MiB", 2**20), ("GiB", 2**30)]
    ),
)
def test_size_units_multiply(amount: int, unit: tuple[str, int]) -> None:
    name, factor = unit
    assert parse_size(f"{amount}{name}") == amount * factor
    assert parse_size(f"{amount}{name.lower()}") == amount * factor
