"""The tiny model builds locally, deterministically, with the Nemotron special tokens."""

from __future__ import annotations

import hashlib
from pathlib import Path

from transformers import AutoTokenizer

from omni_sglang.tiny.model import build_tiny_model, ensure_tiny_model
from omni_sglang.tiny.tokenizer import CHATML_TOKENS, MEDIA_TOKENS, TEXT_TAG_TOKENS


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.name in ("model.safetensors", "tokenizer.json", "config.json")
    }


def test_build_is_deterministic(tmp_path: Path, tiny_model_path: Path) -> None:
    fresh = tmp_path / "again"
    fresh.mkdir()
    build_tiny_model(fresh)
    assert _digest(fresh) == _digest(tiny_model_path)


def test_ensure_reuses_the_cache(tiny_model_path: Path) -> None:
    assert ensure_tiny_model(tiny_model_path.parent) == tiny_model_path


def test_special_tokens_are_single_tokens(tiny_model_path: Path) -> None:
    tok = AutoTokenizer.from_pretrained(str(tiny_model_path))
    for token in CHATML_TOKENS + MEDIA_TOKENS + TEXT_TAG_TOKENS:
        assert len(tok(token, add_special_tokens=False).input_ids) == 1, token
    # Reasoning and tool tags survive skip_special_tokens (parsers need them in text).
    ids = tok("<think>x</think><tool_call>", add_special_tokens=False).input_ids
    assert tok.decode(ids, skip_special_tokens=True) == "<think>x</think><tool_call>"


def test_chat_template_thinking_semantics(tiny_model_path: Path) -> None:
    tok = AutoTokenizer.from_pretrained(str(tiny_model_path))
    msgs = [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hi"}]
    on = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert on.startswith("<|im_start|>system\nBe brief<|im_end|>\n<|im_start|>user\nHi<|im_end|>")
    assert on.endswith("<|im_start|>assistant\n<think>\n")
    off = tok.apply_chat_template(
        msgs, tokenize=False, add_generation_prompt=True, enable_thinking=False
    )
    assert off.endswith("<|im_start|>assistant\n<think></think>")
    no_think = [{"role": "system", "content": "/no_think Be brief"}, msgs[1]]
    rendered = tok.apply_chat_template(no_think, tokenize=False, add_generation_prompt=True)
    assert rendered.endswith("<think></think>") and "/no_think" not in rendered


def test_chat_template_tools_and_results(tiny_model_path: Path) -> None:
    tok = AutoTokenizer.from_pretrained(str(tiny_model_path))
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    msgs = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "c0",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c0", "content": "21 C"},
    ]
    text = tok.apply_chat_template(msgs, tools=tools, tokenize=False, add_generation_prompt=True)
    assert "<tools>" in text and '"name": "get_weather"' in text
    assert "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n" in text
    assert "<|im_start|>user\n<tool_response>\n21 C\n</tool_response>\n<|im_end|>" in text
