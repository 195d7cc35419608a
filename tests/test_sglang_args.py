"""SGLang server arguments: every serving profile through SGLang's real parser and
resolution (on a fake checkpoint config shaped like the real one), and ``--dry-run``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from omni_sglang.config import ServerConfig, load_config
from omni_sglang.engines.sglang_args import (
    build_server_args,
    parse_server_args,
    server_args_argv,
)
from omni_sglang.errors import ConfigError

pytestmark = pytest.mark.sglang
ROOT = Path(__file__).resolve().parent.parent
PROFILES = {
    "nemotron-3-nano-omni": ("nvidia/Nemotron-3-Nano-Omni-30B-A3B-Reasoning-BF16", 0.85),
    "nemotron-3-nano-omni-fp8-h100": ("nvidia/Nemotron-3-Nano-Omni-30B-A3B-Reasoning-FP8", 0.85),
    "nemotron-3-nano-omni-bf16-h200": ("nvidia/Nemotron-3-Nano-Omni-30B-A3B-Reasoning-BF16", 0.88),
}
NIM_NAME = "nvidia/nemotron-3-nano-omni-30b-a3b-reasoning"


def profile(name: str, **overrides: Any) -> ServerConfig:
    return load_config(overrides, config_file=str(ROOT / "configs" / f"{name}.toml"), environ={})


def flag_value(argv: list[str], flag: str) -> str:
    assert argv.count(flag) == 1, f"{flag} given {argv.count(flag)} times in {argv}"
    return argv[argv.index(flag) + 1]


@pytest.fixture(scope="module")
def fake_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """config.json shaped like the real checkpoint's (published shapes: 52 layers = 23
    Mamba-2 + 23 MoE + 6 attention, GQA 32/2, hidden 2688, vocab 131072, 256k window),
    in the older NemotronH layer spelling SGLang accepts; no weights, no tokenizer."""
    pattern = "MEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEMEM*EMEMEMEME"
    assert (pattern.count("M"), pattern.count("E"), pattern.count("*")) == (23, 23, 6)
    config = {
        "architectures": ["NemotronH_Nano_Omni_Reasoning_V3"],
        "model_type": "NemotronH_Nano_Omni_Reasoning_V3",
        "torch_dtype": "bfloat16",
        "downsample_ratio": 0.5,
        "force_image_size": 512,
        "patch_size": 16,
        "vit_hidden_size": 1280,
        "video_pruning_rate": 0.0,
        "llm_config": {
            "architectures": ["NemotronHForCausalLM"],
            "model_type": "nemotron_h",
            "vocab_size": 131072,
            "hidden_size": 2688,
            "hybrid_override_pattern": pattern,
            "num_attention_heads": 32,
            "num_key_value_heads": 2,
            "head_dim": 128,
            "max_position_embeddings": 262144,
            "n_routed_experts": 128,
            "num_experts_per_tok": 6,
            "n_shared_experts": 1,
            "torch_dtype": "bfloat16",
        },
        "vision_config": {
            "args": {"model": "vit_huge_patch16_224", "register_multiple": 8},
            "preferred_resolution": [512, 512],
            "image_size": 512,
            "patch_size": 16,
        },
        "sound_config": {"model_type": "parakeet", "hidden_size": 1024},
    }
    folder = tmp_path_factory.mktemp("fake-omni-checkpoint")
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_profile_parses_with_sglangs_parser(name: str) -> None:
    model, fraction = PROFILES[name]
    config = profile(name)
    assert config.engine == "sglang" and config.model_path == model
    assert config.model_names[0] == NIM_NAME
    argv = server_args_argv(config)
    args = build_server_args(config)
    assert args.model_path == model
    assert args.context_length == config.max_model_len
    assert args.mem_fraction_static == fraction
    assert args.chunked_prefill_size and args.max_running_requests
    # Decode graphs never captured past the largest batch that can run.
    assert args.cuda_graph_max_bs_decode == args.max_running_requests
    assert args.enable_custom_logit_processor is True
    assert (args.reasoning_parser, args.tool_call_parser) == ("nemotron_3", "qwen3_coder")
    assert json.loads(args.json_model_override_args) == {"video_pruning_rate": 0.5}
    assert flag_value(argv, "--context-length") == str(config.max_model_len)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_profile_resolves_against_the_checkpoint_config(name: str, fake_checkpoint: Path) -> None:
    """What sglang.Engine does at start-up: resolution reads config.json, checks the
    context length against the model's window and applies the EVS override to the
    model's own config class. (--device cpu: no GPU here; CUDA-graph sizes resolve
    differently on CPU, so they are checked as parsed, above.)"""
    from sglang.srt.arg_groups.overrides import model_config_of

    config = profile(name, model_path=str(fake_checkpoint))
    args = parse_server_args([*server_args_argv(config), "--device", "cpu"])
    args.resolve_once()
    resolved = args.resolved_dict()
    assert resolved["context_length"] == config.max_model_len
    model_config = model_config_of(args)
    assert type(model_config.hf_config).__name__ == "NemotronH_Nano_Omni_Reasoning_V3_Config"
    assert model_config.hf_config.video_pruning_rate == 0.5
    assert model_config.is_multimodal


def test_context_longer_than_the_model_fails_resolution(fake_checkpoint: Path) -> None:
    config = load_config({"model_path": str(fake_checkpoint), "max_model_len": 300000}, environ={})
    args = parse_server_args([*server_args_argv(config), "--device", "cpu"])
    with pytest.raises(ValueError, match="greater than the derived context_length"):
        args.resolve_once()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
        (["--cuda-graph-max-bs", "64"], "--cuda-graph-max-bs"),  # removed in 0.5.23
        (["--mem-fraction-static", "lots"], "invalid"),
        (["--reasoning-parser", "nope"], "invalid choice: 'nope'"),
    ],
)
def test_bad_flags_fail_with_sglangs_message(extra: list[str], message: str) -> None:
    config = profile("nemotron-3-nano-omni", sglang_args=extra)
    with pytest.raises(ConfigError, match="SGLang rejected") as info:
        build_server_args(config)
    assert message in str(info.value)


def test_user_model_overrides_merge_with_evs() -> None:
    config = load_config(
        {
            "model_path": "/m",
            "video_pruning_rate": 0.7,
            "sglang_args": ['--json-model-override-args={"rope_theta": 1.0}'],
        },
        environ={},
    )
    argv = server_args_argv(config)
    assert json.loads(flag_value(argv, "--json-model-override-args")) == {
        "rope_theta": 1.0,
        "video_pruning_rate": 0.7,
    }
    # The user's own value for the same key wins: they named it on purpose.
    config = config.model_copy(
        update={"sglang_args": ["--json-model-override-args", '{"video_pruning_rate": 0}']}
    )
    overrides = json.loads(flag_value(server_args_argv(config), "--json-model-override-args"))
    assert overrides == {"video_pruning_rate": 0}
    with pytest.raises(ConfigError, match="not JSON"):
        server_args_argv(
            config.model_copy(update={"sglang_args": ["--json-model-override-args", "{"]})
        )


def test_context_length_is_set_once() -> None:
    config = load_config(
        {"model_path": "/m", "max_model_len": 4096, "sglang_args": ["--context-length", "8192"]},
        environ={},
    )
    with pytest.raises(ConfigError, match="set the context length once"):
        server_args_argv(config)
    same = config.model_copy(update={"sglang_args": ["--context-length", "4096"]})
    assert build_server_args(same).context_length == 4096


def test_sglang_parsers_follow_our_plugins() -> None:
    plain = load_config({"model_path": "/m", "reasoning_parser": "", "tool_parser": ""}, environ={})
    argv = server_args_argv(plain)
    assert "--reasoning-parser" not in argv and "--tool-call-parser" not in argv
    nemotron = load_config(
        {"model_path": "/m", "reasoning_parser": "nemotron_v3", "tool_parser": "qwen3_coder"},
        environ={},
    )
    argv = server_args_argv(nemotron)
    assert flag_value(argv, "--reasoning-parser") == "nemotron_3"
    assert flag_value(argv, "--tool-call-parser") == "qwen3_coder"


def test_registered_parser_is_a_valid_choice_after_plugins_load() -> None:
    """Plugins load before parsing (as in SGLang's launchers), so a parser registered
    by our sglang.srt.plugins entry point is accepted by --reasoning-parser."""
    config = load_config(
        {"model_path": "/m", "sglang_args": ["--reasoning-parser", "omni_nemotron_v3"]},
        environ={},
    )
    assert build_server_args(config).reasoning_parser == "omni_nemotron_v3"


def dry_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "omni_sglang.launch", "--dry-run", *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "SGLANG_PLUGINS"},
    )


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_dry_run_prints_sglang_args_and_plugins(name: str) -> None:
    result = dry_run("--config", f"configs/{name}.toml")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # stdout is the JSON report only
    model, fraction = PROFILES[name]
    assert report["engine"] == "sglang"
    assert report["plugins"]["reasoning_parser"] == "nemotron_v3"
    assert report["plugins"]["thinking_budget_processor"] == "nemotron_thinking_budget"
    parsed = report["sglang_server_args"]
    assert parsed["model_path"] == model and parsed["mem_fraction_static"] == fraction
    assert parsed["context_length"] == report["config"]["max_model_len"]
    assert parsed["reasoning_parser"] == "nemotron_3"
    assert json.loads(parsed["json_model_override_args"]) == {"video_pruning_rate": 0.5}
    assert report["sglang_argv"][:2] == ["--model-path", model]
    assert "omni_nemotron" in report["sglang_plugins"]
    assert "api_key" not in report["config"]


def test_dry_run_tiny_cpu_and_failures() -> None:
    tiny = dry_run("--config", "configs/tiny-cpu.toml")
    assert tiny.returncode == 0, tiny.stderr
    report = json.loads(tiny.stdout)
    assert report["engine"] == "cpu" and "sglang_argv" not in report
    assert report["config"]["served_model_name"][0] == "tiny-nemotron-h"
    bad = dry_run("--config", "configs/nemotron-3-nano-omni-fp8-h100.toml", "--", "--bogus")
    assert bad.returncode == 2
    assert "SGLang rejected its server arguments" in bad.stderr and "--bogus" in bad.stderr
    assert "Traceback" not in bad.stderr
    typo = dry_run("--config", "configs/tiny-cpu.toml", "--reasoning-parser", "nope")
    assert typo.returncode == 2 and "no reasoning_parsers plugin named 'nope'" in typo.stderr
