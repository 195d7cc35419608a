"""``logprobs`` / ``top_logprobs`` on chat completions and ``logprobs`` (+ ``echo``) on text
completions (issue 15, part 3), on both engines: OpenAI's shapes, the values the engine's
own ``/generate`` reports for the same tokens, streamed equal to whole, tokens whose bytes
join back into the text, and bad values refused with a 400."""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
import pytest

from tests.conftest import TINY, Server

NO_THINK = {"enable_thinking": False}
MESSAGES = [{"role": "user", "content": "Name a colour."}]
#: Multi-byte characters, so some tokens are lone bytes of a character.
FORCED_TEXT = "Ça va ✓ 𠮷"
#: OpenAI's tolerance for "the same logprob": engines batch and cache prefixes, so two
#: runs of one prompt may differ in the last float bits.
TOLERANCE = 1e-3


def post(server: Server, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(server.url + path, json=body, timeout=180)


def chat(server: Server, **fields: Any) -> dict[str, Any]:
    body = {"model": TINY, "messages": MESSAGES, "chat_template_kwargs": NO_THINK, **fields}
    response = post(server, "/v1/chat/completions", body)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def streamed(server: Server, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    chunks = []
    with httpx.stream("POST", server.url + path, json={**body, "stream": True}, timeout=180) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                chunks.append(json.loads(line[6:]))
    return chunks


def forced(processor: str, ids: list[int]) -> dict[str, Any]:
    return {"custom_logit_processor": processor, "custom_params": {"force": ids}}


def assert_close(got: list[float | None], want: list[float | None]) -> None:
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert (a is None) == (b is None), (got, want)
        if a is not None and b is not None:
            assert math.isclose(a, b, abs_tol=TOLERANCE), (got, want)


def test_chat_logprobs_are_the_engines_own(engine_server: Server) -> None:
    """Greedy: the chat answer's tokens and logprobs are what ``/generate`` reports for
    the prompt the chat template renders, and its top logprobs are sorted and hold the
    chosen token (greedy picks the most likely)."""
    fields = {"temperature": 0, "max_tokens": 8, "logprobs": True, "top_logprobs": 3}
    answer = chat(engine_server, **fields)
    content = answer["choices"][0]["logprobs"]["content"]
    assert answer["choices"][0]["logprobs"]["refusal"] is None
    assert len(content) == answer["usage"]["completion_tokens"]
    render = post(
        engine_server,
        "/v1/chat/completions/render",
        {"model": TINY, "messages": MESSAGES, "chat_template_kwargs": NO_THINK},
    ).json()
    native = post(
        engine_server,
        "/generate",
        {
            "input_ids": render["prompt_token_ids"],
            "sampling_params": {"temperature": 0, "max_new_tokens": 8},
            "return_logprob": True,
            "top_logprobs_num": 3,
        },
    ).json()["meta_info"]
    assert_close([e["logprob"] for e in content], [e[0] for e in native["output_token_logprobs"]])
    for entry, native_top in zip(content, native["output_top_logprobs"], strict=True):
        top = [t["logprob"] for t in entry["top_logprobs"]]
        assert len(top) == 3 and top == sorted(top, reverse=True)
        assert_close(top, [t[0] for t in native_top])
        assert entry["token"] == entry["top_logprobs"][0]["token"]
        assert math.isclose(entry["logprob"], top[0], abs_tol=TOLERANCE)
        assert entry["logprob"] <= 0


def test_tokens_and_bytes_spell_the_answer(
    engine_server: Server, force_tokens_processor: str, tok: Any
) -> None:
    """Forced text with multi-byte characters: every token's bytes join into the answer
    (the end token's markup after it), a token holding part of a character is named
    ``bytes:\\x..`` as OpenAI names it, and whole tokens are named by their text."""
    ids = [*tok(FORCED_TEXT, add_special_tokens=False).input_ids, tok.eos_token_id]
    answer = chat(
        engine_server,
        max_tokens=len(ids) + 4,
        logprobs=True,
        top_logprobs=2,
        **forced(force_tokens_processor, ids),
    )
    choice = answer["choices"][0]
    assert choice["message"]["content"] == FORCED_TEXT
    content = choice["logprobs"]["content"]
    assert len(content) == len(ids)
    joined = b"".join(bytes(e["bytes"]) for e in content)
    assert joined == FORCED_TEXT.encode() + tok.eos_token.encode()
    fragments = [e for e in content if e["token"].startswith("bytes:")]
    assert fragments, content
    for entry in content:
        raw = bytes(entry["bytes"])
        if entry in fragments:
            assert entry["token"] == "bytes:" + "".join(f"\\x{b:02x}" for b in raw)
        else:
            assert entry["token"] == raw.decode()
        assert all(len(t["bytes"]) > 0 for t in entry["top_logprobs"])


def test_streamed_chat_logprobs_equal_the_whole(engine_server: Server) -> None:
    """Each chunk carries its own tokens' logprobs; together they are the whole answer's
    (greedy, so both runs pick the same tokens)."""
    body = {
        "model": TINY,
        "messages": MESSAGES,
        "temperature": 0,
        "max_tokens": 12,
        "logprobs": True,
        "top_logprobs": 2,
    }
    whole = post(engine_server, "/v1/chat/completions", body).json()
    want = whole["choices"][0]["logprobs"]["content"]
    chunks = streamed(engine_server, "/v1/chat/completions", body)
    got = [
        e for c in chunks for ch in c["choices"] for e in (ch["logprobs"] or {}).get("content", [])
    ]
    assert [e["token"] for e in got] == [e["token"] for e in want]
    assert_close([e["logprob"] for e in got], [e["logprob"] for e in want])
    # The reasoning and the answer are both covered: every generated token.
    assert len(got) == whole["usage"]["completion_tokens"]


def test_chat_without_logprobs_has_none(engine_server: Server) -> None:
    answer = chat(engine_server, max_tokens=3)
    assert answer["choices"][0]["logprobs"] is None


def _completion(server: Server, **fields: Any) -> dict[str, Any]:
    response = post(server, "/v1/completions", {"model": TINY, **fields})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_completion_logprobs_with_echo(engine_server: Server) -> None:
    """``echo`` + ``logprobs``: the prompt's tokens first (the first with no logprob),
    then the completion's; offsets index the choice's text; each position's top
    logprobs hold at most ``logprobs`` + 1 tokens, the chosen one among them (OpenAI)."""
    prompt = "The capital of France is"
    body = _completion(engine_server, prompt=prompt, max_tokens=6, logprobs=2, echo=True)
    choice = body["choices"][0]
    logprobs = choice["logprobs"]
    usage = body["usage"]
    count = usage["prompt_tokens"] + usage["completion_tokens"]
    assert len(logprobs["tokens"]) == len(logprobs["token_logprobs"]) == count
    assert len(logprobs["top_logprobs"]) == len(logprobs["text_offset"]) == count
    assert logprobs["token_logprobs"][0] is None and logprobs["top_logprobs"][0] is None
    assert all(lp is not None and lp <= 0 for lp in logprobs["token_logprobs"][1:])
    text = choice["text"]
    assert text.startswith(prompt)
    offsets = logprobs["text_offset"]
    assert offsets[0] == 0 and offsets == sorted(offsets)
    for token, offset in zip(logprobs["tokens"], offsets, strict=True):
        if not token.startswith("bytes:") and offset < len(text):
            assert text[offset:].startswith(token) or token in ("<|im_end|>",), (token, offset)
    for token, lp, top in zip(
        logprobs["tokens"][1:],
        logprobs["token_logprobs"][1:],
        logprobs["top_logprobs"][1:],
        strict=True,
    ):
        assert 1 <= len(top) <= 3 and top[token] == lp


def test_completion_logprobs_streamed_equal_the_whole(engine_server: Server) -> None:
    body = {"model": TINY, "prompt": "One, two,", "max_tokens": 10, "temperature": 0, "logprobs": 1}
    whole = _completion(engine_server, **body)["choices"][0]["logprobs"]
    assert whole["token_logprobs"][0] is not None  # no echo: the completion's tokens only
    chunks = streamed(engine_server, "/v1/completions", body)
    parts = [c["choices"][0]["logprobs"] for c in chunks if c["choices"]]
    for key in ("tokens", "text_offset"):
        assert [x for p in parts for x in p[key]] == whole[key]
    assert_close([x for p in parts for x in p["token_logprobs"]], whole["token_logprobs"])
    assert whole["text_offset"][0] == 0


def test_completion_logprobs_zero_gives_the_chosen_token(engine_server: Server) -> None:
    body = _completion(engine_server, prompt="Hello", max_tokens=4, logprobs=0)
    logprobs = body["choices"][0]["logprobs"]
    assert len(logprobs["tokens"]) == body["usage"]["completion_tokens"]
    for token, lp, top in zip(
        logprobs["tokens"], logprobs["token_logprobs"], logprobs["top_logprobs"], strict=True
    ):
        assert top == {token: lp}


def test_echo_logprobs_for_every_prompt_and_sample(engine_server: Server) -> None:
    """Two prompts, two samples each: every choice starts with its own prompt's tokens."""
    prompts = ["Red and", "The sky is blue"]
    body = _completion(engine_server, prompt=prompts, n=2, max_tokens=3, logprobs=1, echo=True)
    assert len(body["choices"]) == 4
    for choice in body["choices"]:
        prompt = prompts[choice["index"] // 2]
        tokens = choice["logprobs"]["tokens"]
        assert "".join(tokens).startswith(prompt), tokens


def test_sdk_reads_logprobs(engine_server: Server) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=engine_server.url + "/v1", api_key="none")
    answer = client.chat.completions.create(
        model=TINY,
        messages=MESSAGES,  # type: ignore[arg-type]
        max_tokens=5,
        logprobs=True,
        top_logprobs=4,
    )
    content = answer.choices[0].logprobs.content  # type: ignore[union-attr]
    assert content and len(content) == answer.usage.completion_tokens  # type: ignore[union-attr]
    # bytes may be empty: the random model can pick its padded vocabulary's ids, which
    # the tokenizer spells as ""
    assert all(len(t.top_logprobs) == 4 and t.bytes is not None for t in content), content
    stream = client.chat.completions.create(
        model=TINY,
        messages=MESSAGES,
        max_tokens=5,
        logprobs=True,
        stream=True,  # type: ignore[arg-type]
    )
    tokens = [
        t for c in stream for ch in c.choices if ch.logprobs for t in ch.logprobs.content or []
    ]
    assert len(tokens) == 5 or tokens[-1].token == "<|im_end|>"
    text = client.completions.create(model=TINY, prompt="Hi", max_tokens=3, logprobs=2, echo=True)
    legacy = text.choices[0].logprobs
    assert legacy is not None and legacy.token_logprobs[0] is None  # type: ignore[index]
    assert len(legacy.tokens or []) == text.usage.total_tokens  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("path", "fields", "param"),
    [
        ("/v1/chat/completions", {"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ("/v1/chat/completions", {"logprobs": True, "top_logprobs": -1}, "top_logprobs"),
        ("/v1/chat/completions", {"top_logprobs": 2}, "top_logprobs"),
        ("/v1/chat/completions", {"logprobs": "yes"}, "logprobs"),
        ("/v1/completions", {"logprobs": 6}, "logprobs"),
        ("/v1/completions", {"logprobs": -1}, "logprobs"),
    ],
)
def test_bad_logprobs_are_400(
    tiny_server: Server, path: str, fields: dict[str, Any], param: str
) -> None:
    base: dict[str, Any] = {"model": TINY, "max_tokens": 2}
    base.update({"messages": MESSAGES} if "chat" in path else {"prompt": "Hi"})
    response = post(tiny_server, path, {**base, **fields})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert param in error["message"] + str(error.get("param"))


def test_text_offsets_point_at_each_tokens_character(tok: Any) -> None:
    """Offsets over text with characters split across tokens and a lone broken byte: a
    whole token's offset starts its text; a piece of a character points at that
    character; a token after a broken byte starts after the U+FFFD the text shows."""
    from omni_sglang.output.logprobs import CompletionLogprobs, TokenNames

    names = TokenNames(tok)
    ids = tok(FORCED_TEXT, add_special_tokens=False).input_ids
    broken = tok("✓", add_special_tokens=False).input_ids[0]  # the first of its 3 bytes
    ids = [*ids, broken, *tok("ok", add_special_tokens=False).input_ids]
    text = tok.decode(ids)
    assert text == FORCED_TEXT + "\ufffdok"
    logprobs = CompletionLogprobs(names)
    logprobs.add([[-1.0, i, None] for i in ids], None)
    byte_at = 0
    char_of_byte = [i for i, ch in enumerate(FORCED_TEXT) for _ in ch.encode()]
    for token_id, offset in zip(ids, logprobs.text_offset, strict=True):
        name, raw = names(token_id)
        if byte_at < len(char_of_byte):  # within FORCED_TEXT
            assert offset == char_of_byte[byte_at], (name, offset)
        if not name.startswith("bytes:"):
            assert text[offset:].startswith(name), (name, offset)
        byte_at += len(raw)
    assert logprobs.text_offset[-1] == len(FORCED_TEXT) + 1  # "ok" after the U+FFFD


def test_ids_sharing_a_name_keep_the_likelier_and_the_chosen(tok: Any) -> None:
    """The tiny model's vocabulary is padded past its tokenizer (704 ids, 668 named):
    those ids all decode to "". In a legacy ``top_logprobs`` dict the likelier keeps the
    shared key, and the chosen token is always there under its own logprob."""
    from omni_sglang.output.logprobs import CompletionLogprobs, TokenNames

    first_unnamed = len(tok)
    a, b, c = first_unnamed, first_unnamed + 1, first_unnamed + 2
    logprobs = CompletionLogprobs(TokenNames(tok))
    logprobs.add([[-2.0, b, None]], [[[-0.5, a, None], [-1.0, 5, None], [-2.0, b, None]]])
    logprobs.add([[-0.1, 5, None]], [[[-0.1, 5, None], [-0.7, a, None], [-0.9, c, None]]])
    name_5 = TokenNames(tok)(5)[0]
    assert logprobs.top_logprobs == [{"": -2.0, name_5: -1.0}, {name_5: -0.1, "": -0.7}]


def test_a_forced_token_is_certain(
    engine_server: Server, force_tokens_processor: str, tok: Any
) -> None:
    """A sampled token's logprob is read from the distribution it was drawn from (SGLang's
    rule), after the custom processor: a forced token is certain (0), the tokens the
    processor ruled out are impossible (OpenAI's clients get vLLM's -9999, not -inf)."""
    ids = [*tok("Yes", add_special_tokens=False).input_ids, tok.eos_token_id]
    answer = chat(
        engine_server, logprobs=True, top_logprobs=3, **forced(force_tokens_processor, ids)
    )
    for entry in answer["choices"][0]["logprobs"]["content"]:
        assert entry["logprob"] == 0.0
        assert [t["logprob"] for t in entry["top_logprobs"]][1:] == [-9999.0, -9999.0]


def test_logprobs_follow_the_temperature(engine_server: Server) -> None:
    """At temperature 0.5 the first position's top logprobs are twice as far apart as at
    1 (log-softmax of logits / T); greedy reports the unscaled distribution."""

    def first_top(temperature: float) -> list[float]:
        answer = chat(
            engine_server, temperature=temperature, max_tokens=1, logprobs=True, top_logprobs=5
        )
        top = answer["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
        return [t["logprob"] - top[0]["logprob"] for t in top]

    unscaled, half, greedy = first_top(1.0), first_top(0.5), first_top(0.0)
    assert_close(half, [2 * gap for gap in unscaled])
    assert_close(greedy, unscaled)
    assert min(unscaled) < -TOLERANCE  # the test can tell the two apart
