"""SGLang's native API on our server (CPU engine), and SGLang frontend-language programs."""

from __future__ import annotations

import itertools
import json
import re

import httpx
import pytest

from omni_sglang.protocol.sglang import PASSED_TO_SGLANG, GenerateRequest
from omni_sglang.sglang_source import (
    NOT_LITERAL,
    generate_req_input_fields,
    sampling_params_keys,
)
from tests.conftest import Server


def gen(server: Server, **body: object) -> httpx.Response:
    return httpx.post(server.url + "/generate", json=body, timeout=120)


def test_generate_single_batch_and_ids(engine_server: Server) -> None:
    params = {"max_new_tokens": 6, "temperature": 0, "ignore_eos": True}
    one = gen(engine_server, text="Hello", sampling_params=params).json()
    assert set(one) >= {"text", "output_ids", "meta_info"}
    meta = one["meta_info"]
    assert meta["completion_tokens"] == 6 and meta["prompt_tokens"] > 0
    assert meta["finish_reason"] == {"type": "length"}
    batch = gen(engine_server, text=["Hello", "Paris"], sampling_params=params).json()
    assert isinstance(batch, list) and len(batch) == 2 and batch[0]["text"] == one["text"]
    ids = gen(engine_server, input_ids=one["output_ids"], sampling_params=params).json()
    assert ids["meta_info"]["prompt_tokens"] == 6
    many = gen(engine_server, text="Hello", sampling_params={**params, "n": 3}).json()
    assert isinstance(many, list) and len(many) == 3


def test_logprobs_shapes(engine_server: Server) -> None:
    body = gen(
        engine_server,
        text="The weather in Paris",
        return_logprob=True,
        logprob_start_len=0,
        top_logprobs_num=3,
        return_text_in_logprobs=True,
        sampling_params={"max_new_tokens": 4, "temperature": 0, "ignore_eos": True},
    ).json()
    meta = body["meta_info"]
    prompt = meta["input_token_logprobs"]
    assert len(prompt) == meta["prompt_tokens"] and prompt[0][0] is None
    assert all(lp <= 0 and isinstance(t, int) and isinstance(s, str) for lp, t, s in prompt[1:])
    out = meta["output_token_logprobs"]
    assert [e[1] for e in out] == body["output_ids"]
    tops = meta["output_top_logprobs"]
    assert len(tops) == 4 and all(len(t) == 3 for t in tops)
    # Greedy: each chosen token is the most likely one.
    assert all(top[0][1] == e[1] for top, e in zip(tops, out, strict=True))


def test_prefill_only_and_stream(engine_server: Server) -> None:
    body = gen(engine_server, text="Hello there", sampling_params={"max_new_tokens": 0}).json()
    assert body["output_ids"] == [] and body["meta_info"]["completion_tokens"] == 0
    params = {"max_new_tokens": 5, "temperature": 0, "ignore_eos": True}
    whole = gen(engine_server, text="Hello", sampling_params=params).json()["text"]
    texts = []
    with httpx.stream(
        "POST",
        engine_server.url + "/generate",
        timeout=60,
        json={"text": "Hello", "sampling_params": params, "stream": True},
    ) as r:
        for line in r.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                texts.append(json.loads(line[6:])["text"])
    assert texts[-1] == whole
    assert all(b.startswith(a) for a, b in itertools.pairwise(texts))  # cumulative


def test_streamed_logprobs_are_per_chunk(engine_server: Server) -> None:
    """SGLang's frontend shape: cumulative text and output_ids, the output logprobs new
    since the previous chunk, and their running total in ``output_token_logprobs_length``."""
    body = {
        "text": "Hello",
        "return_logprob": True,
        "top_logprobs_num": 2,
        "sampling_params": {"max_new_tokens": 6, "temperature": 0, "ignore_eos": True},
    }
    whole = gen(engine_server, **body).json()["meta_info"]
    assert whole["output_token_logprobs_length"] == len(whole["output_token_logprobs"]) == 6
    chunks = []
    with httpx.stream(
        "POST", engine_server.url + "/generate", timeout=60, json={**body, "stream": True}
    ) as r:
        for line in r.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                chunks.append(json.loads(line[6:]))
    metas = [c["meta_info"] for c in chunks]
    assert len(metas) > 1
    assert [e for m in metas for e in m["output_token_logprobs"]] == whole["output_token_logprobs"]
    assert [e for m in metas for e in m["output_top_logprobs"]] == whole["output_top_logprobs"]
    assert all(
        m["output_token_logprobs_length"] == m["completion_tokens"] == len(c["output_ids"])
        for m, c in zip(metas, chunks, strict=True)
    )
    assert all(m["input_token_logprobs"] == whole["input_token_logprobs"] for m in metas)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"src_rids": ["a", "b"], "dst_rid": "c"}, 200),
        ({"src_rids": [], "dst_rid": "c"}, 200),
        ({"src_rids": "a", "dst_rid": "c"}, 400),
        ({"src_rids": ["a"]}, 400),
        ({"src_rids": ["a"], "dst_rid": "c", "extra": 1}, 400),
        ([1, 2], 400),
    ],
)
def test_concate_and_append_request(engine_server: Server, body: object, status: int) -> None:
    """SGLang's frontend posts here on ``join(mode="concate_and_append")``: accepted (the
    text join), and bad bodies are a 400 in the usual envelope."""
    resp = httpx.post(engine_server.url + "/concate_and_append_request", json=body, timeout=30)
    assert resp.status_code == status, resp.text
    assert ("error" in resp.json()) == (status != 200)


def test_info_cache_and_health(engine_server: Server) -> None:
    info = httpx.get(engine_server.url + "/get_model_info").json()
    assert info["is_generation"] and info["model_path"]
    assert httpx.get(engine_server.url + "/model_info").json() == info
    assert httpx.post(engine_server.url + "/flush_cache").status_code == 200
    assert httpx.get(engine_server.url + "/health").status_code == 200
    assert httpx.get(engine_server.url + "/health_generate", timeout=60).status_code == 200


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"text": "a", "input_ids": [1]}, "exactly one"),
        ({}, "exactly one"),
        ({"text": "a", "sampling_params": {"temperature": -1}}, "temperature"),
        ({"text": "a", "sampling_params": {"bogus": 1}}, "bogus"),
        ({"text": ["a", "b"], "sampling_params": [{}]}, "batch of 2"),
        ({"text": "a", "lora_path": "x"}, "'lora_path' must be unset or null here: this server"),
        ({"text": "a", "return_hidden_states": True}, "'return_hidden_states' must be unset"),
        ({"text": "a", "not_an_sglang_field": 1}, "not_an_sglang_field"),
        ({"input_ids": [10**7]}, "token ids"),
    ],
)
def test_generate_bad_input(engine_server: Server, body: dict, fragment: str) -> None:
    resp = gen(engine_server, **body)
    assert resp.status_code == 400, resp.text
    assert fragment in resp.json()["error"]["message"]


def test_field_table_is_sglangs_own_dataclass() -> None:
    """The table read from SGLang's source is GenerateReqInput's fields, defaults too: a
    new SGLang field cannot slip by unnoticed."""
    import dataclasses

    from sglang.srt.managers.io_struct import GenerateReqInput

    table = generate_req_input_fields()
    fields = dataclasses.fields(GenerateReqInput)
    assert list(table) == [f.name for f in fields]
    for f in fields:
        if table[f.name] is not NOT_LITERAL:
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            assert table[f.name] == default, f.name


def test_sampling_keys_are_sglangs_own_signature() -> None:
    """Both engines check ``sampling_params`` against SGLang's ``SamplingParams`` as
    installed; the cpu engine implements a subset and refuses the rest by name."""
    import inspect

    from sglang.srt.sampling.sampling_params import SamplingParams

    from omni_sglang.engines.cpu.sampling import SUPPORTED_KEYS, unimplemented_keys

    assert sampling_params_keys() == set(inspect.signature(SamplingParams).parameters)
    assert sampling_params_keys() >= SUPPORTED_KEYS
    assert {"stop_regex", "beam_width", "watermark"} <= unimplemented_keys()


def test_every_sglang_field_at_its_neutral_value_is_accepted(engine_server: Server) -> None:
    """What SGLang's own clients send (bench_serving: a null lora_path,
    return_routed_experts false, ...): every GenerateReqInput field we do not take, at
    SGLang's default, in one request."""
    ours = set(GenerateRequest.model_fields) - {"sglang_fields"}  # not a wire name
    neutral = {
        name: None if default is NOT_LITERAL else default
        for name, default in generate_req_input_fields().items()
        if name not in ours
    }
    assert {"lora_path", "return_routed_experts", "return_hidden_states"} <= set(neutral)
    body = {"text": "Hi", "sampling_params": {"max_new_tokens": 2}, **neutral}
    resp = gen(engine_server, **body)
    assert resp.status_code == 200, resp.text
    # Null is "unset" for our own fields too, as in SGLang.
    nulls = {name: None for name in ours if name not in ("text", "sampling_params")}
    assert gen(engine_server, **body, **nulls).status_code == 200


def test_fields_for_sglangs_runtime_are_refused_by_name_on_the_cpu_engine(
    tiny_server: Server,
) -> None:
    """``priority``, ``extra_key``, ... go to SGLang unchanged on the sglang engine
    (tests/test_sglang_prefix_cache.py sees ``extra_key`` work); the cpu engine has no
    SGLang scheduler to honour them, so a set one is a 400 that names it."""
    for name, value in PASSED_FIELD_VALUES.items():
        resp = gen(tiny_server, text="Hi", sampling_params={"max_new_tokens": 1}, **{name: value})
        assert resp.status_code == 400, (name, resp.text)
        error = resp.json()["error"]
        assert error["param"] == name and "--engine sglang" in error["message"], error
    resp = gen(tiny_server, text="Hi", sglang_fields={"priority": 1})
    assert resp.status_code == 400 and "sglang_fields" in resp.text


#: A value, not SGLang's neutral one, for each field passed to SGLang's runtime.
PASSED_FIELD_VALUES = {
    "priority": 1,
    "extra_key": "tenant-a",
    "routing_key": "k",
    "conversation_id": "c-1",
    "log_metrics": False,
    "no_logs": True,
    "custom_labels": {"team": "a"},
}


def test_the_passed_field_table_is_covered() -> None:
    assert set(PASSED_FIELD_VALUES) == PASSED_TO_SGLANG <= set(generate_req_input_fields())


@pytest.fixture(scope="module")
def sgl_backend(engine_server: Server):  # type: ignore[no-untyped-def]
    import sglang as sgl

    backend = sgl.RuntimeEndpoint(engine_server.url)
    sgl.set_default_backend(backend)
    return sgl


@pytest.mark.sglang
def test_frontend_gen_select_regex(sgl_backend) -> None:  # type: ignore[no-untyped-def]
    sgl = sgl_backend

    @sgl.function
    def program(s, question):  # type: ignore[no-untyped-def]
        s += "Q: " + question + "\nA:"
        s += sgl.gen("answer", max_tokens=8, temperature=0, stop="\n")
        s += "\nPick: " + sgl.select("pick", choices=["yes", "no", "maybe"])
        s += "\nCode: " + sgl.gen("code", max_tokens=12, regex=r"[0-9]{3}-[A-Z]{2}")

    state = program.run(question="Is Paris in France?")
    again = program.run(question="Is Paris in France?")
    assert state["answer"] == again["answer"] and "\n" not in state["answer"]
    assert state["pick"] in ("yes", "no", "maybe") and state["pick"] == again["pick"]
    assert re.fullmatch(r"[0-9]{3}-[A-Z]{2}", state["code"])


@pytest.mark.sglang
def test_frontend_multi_turn_and_stream(sgl_backend) -> None:  # type: ignore[no-untyped-def]
    sgl = sgl_backend

    @sgl.function
    def chat(s):  # type: ignore[no-untyped-def]
        s += sgl.system("You are terse.")
        s += sgl.user("Name a city.")
        s += sgl.assistant(sgl.gen("city", max_tokens=6, temperature=0))
        s += sgl.user("And a river?")
        s += sgl.assistant(sgl.gen("river", max_tokens=6, temperature=0))

    state = chat.run()
    assert [m["role"] for m in state.messages()] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
    ]
    streamed = chat.run(stream=True)
    text = "".join(streamed.text_iter())
    assert state["river"] in text and state.text() == streamed.text()
