"""Configuration: file < environment < flags, validated with field names in errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from omni_sglang.config import load_config
from omni_sglang.errors import ConfigError
from omni_sglang.launch import config_from_cli, parse_cli


def test_precedence_file_env_cli(tmp_path: Path) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text('[server]\nport = 7000\nlog_level = "debug"\n[model]\nmax_model_len = 100\n')
    env = {"OMNI_SGLANG_PORT": "7100", "OMNI_SGLANG_MAX_MODEL_LEN": "200"}
    config = load_config({"port": 7200}, config_file=str(profile), environ=env)
    assert config.port == 7200  # flag beats env
    assert config.max_model_len == 200  # env beats file
    assert config.log_level == "debug"  # file beats default


def test_nim_environment_names(tmp_path: Path) -> None:
    env = {"NIM_SERVED_MODEL_NAME": "a,b", "NIM_SERVER_PORT": "9000"}
    config = load_config({}, environ=env)
    assert config.model_names == ["a", "b"]
    assert config.port == 9000


def test_tiny_model_default_names() -> None:
    config = load_config({}, environ={})
    assert config.uses_tiny_model
    assert config.model_names == [
        "tiny-nemotron-h",
        "nvidia/nemotron-3-nano-omni-30b-a3b-reasoning",
    ]


def test_each_engine_has_its_default_built_in_model() -> None:
    """SGLang runs the Omni architecture's own code; same names on both engines."""
    cpu, sglang = (load_config({"engine": e}, environ={}) for e in ("cpu", "sglang"))
    assert (cpu.tiny_model_name, sglang.tiny_model_name) == ("tiny", "tiny-omni")
    assert cpu.model_names == sglang.model_names
    named = load_config({"engine": "sglang", "model": "tiny"}, environ={})
    assert named.tiny_model_name == "tiny"  # a named model wins
    cli = config_from_cli(*parse_cli(["--engine", "sglang"]))
    assert cli.tiny_model_name == "tiny-omni"


def test_built_in_models_by_name() -> None:
    llama = load_config({"model": "tiny-llama"}, environ={})
    assert llama.uses_tiny_model and llama.model_names == ["tiny-llama"]
    with pytest.raises(ConfigError, match="tiny-llama"):  # the choices are listed
        load_config({"model": "tiny-gpt"}, environ={})
    with pytest.raises(ConfigError, match="not both"):
        load_config({"model": "tiny", "model_path": "/models/x"}, environ={})


def test_bad_value_names_the_field() -> None:
    with pytest.raises(ConfigError, match="port"):
        load_config({}, environ={"OMNI_SGLANG_PORT": "eighty"})
    with pytest.raises(ConfigError, match="no_such_option"):
        load_config({"no_such_option": 1}, environ={})


def test_missing_or_broken_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config({}, config_file=str(tmp_path / "none.toml"), environ={})
    broken = tmp_path / "broken.toml"
    broken.write_text("port = = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config({}, config_file=str(broken), environ={})


def test_cli_flags_aliases_and_passthrough() -> None:
    args, rest = parse_cli(
        [
            "--served-model-name",
            "x",
            "--served-model-name",
            "y",
            "--reasoning-parser",
            "",
            "--",
            "--tp-size",
            "2",
        ]
    )
    config = config_from_cli(args, rest)
    assert config.model_names == ["x", "y"]
    assert config.sglang_args == ["--tp-size", "2"]
    assert config.reasoning_parser is None  # '' disables a plugin
    assert config.engine == "cpu"  # no model path: the tiny model on the CPU engine


def test_every_config_field_has_a_flag_with_its_help_and_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The flags are generated from ServerConfig: --help lists each field's flag with its
    description and its default, once."""
    from omni_sglang.config import ServerConfig
    from omni_sglang.config_flags import flag_name
    from omni_sglang.launch import build_parser

    monkeypatch.setenv("COLUMNS", "10000")  # no line wrapping inside the help texts
    text = " ".join(build_parser().format_help().split())
    for name, info in ServerConfig.model_fields.items():
        assert f"{flag_name(name)} " in text, name
        assert info.description and " ".join(info.description.split()) in text, name
    assert "in flight before new ones get 503 + Retry-After (default: 256)" in text
    assert "before reporting ready (default: on)" in text


@pytest.mark.parametrize(
    ("argv", "field", "value"),
    [
        (["--max-n", "4"], "max_n", 4),
        (["--no-warmup"], "warmup", False),
        (["--enable-custom-logit-processor"], "enable_custom_logit_processor", True),
        (["--request-timeout", "9"], "request_timeout_seconds", 9.0),  # the earlier name
        (
            ["--served-model-name", "a", "--served-model-name", "b,c"],
            "served_model_name",
            ["a", "b", "c"],
        ),
        (["--media-io-kwargs", '{"video": {"fps": 1}}'], "media_io_kwargs", {"video": {"fps": 1}}),
        (
            ["--reasoning-effort-budgets", '{"low": 10}'],
            "reasoning_effort_budgets",
            {"minimal": 256, "low": 10, "medium": 4096, "high": -1},
        ),
        (
            ["--sglang-args", "--max-total-tokens 64 --x 'a b'"],
            "sglang_args",
            ["--max-total-tokens", "64", "--x", "a b"],
        ),
        (["--responses-store-size", "0"], "responses_store_size", 0),
    ],
)
def test_flags_reach_their_fields(argv: list[str], field: str, value: object) -> None:
    config = config_from_cli(*parse_cli(argv))
    assert getattr(config, field) == value


def test_a_flag_value_is_validated_as_the_field_is() -> None:
    from omni_sglang.errors import ConfigError

    with pytest.raises(ConfigError, match="max_n"):
        config_from_cli(*parse_cli(["--max-n", "0"]))
