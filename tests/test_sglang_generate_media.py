"""Media in SGLang's native ``/generate`` (real HTTP server, both engines: SGLang's own
Nemotron Omni model code on ``tiny-omni``): ``image_data`` / ``video_data`` /
``audio_data`` as base64, data: URIs and URLs, batches, refusals, and an SGLang
frontend-language program with ``sgl.image``."""

from __future__ import annotations

import base64
import functools
import itertools
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from omni_sglang.media import synth
from omni_sglang.media.testserver import MediaServer
from tests.conftest import TINY, Server, engine_args

PLACEHOLDER = {"image": "<image>", "video": "<video>", "audio": "<so_embedding>"}
MIME = {"a.png": "image/png", "b.png": "image/png", "a.gif": "image/gif"}
MIME |= {"v.mp4": "video/mp4", "a.wav": "audio/wav", "a.mp3": "audio/mpeg"}
GREEDY = {"max_new_tokens": 3, "temperature": 0, "ignore_eos": True}
PREFIX = "Describe this: "  # the placeholder goes last, so the text tokens are the same


@functools.cache
def data(name: str) -> bytes:
    return {
        "a.png": lambda: synth.image_bytes("PNG", (64, 48)),
        "b.png": lambda: synth.image_bytes("PNG", (256, 64)),
        "a.gif": lambda: synth.image_bytes("GIF", (64, 48), frames=2),
        "v.mp4": lambda: synth.video_bytes(2.0, (160, 120), 10),
        "a.wav": lambda: synth.audio_bytes("wav", 1.0),
        "a.mp3": lambda: synth.audio_bytes("mp3", 1.0),
    }[name]()


def b64(name: str) -> str:
    return base64.b64encode(data(name)).decode()


def data_uri(name: str) -> str:
    return f"data:{MIME[name]};base64,{b64(name)}"


@pytest.fixture(scope="module")
def media() -> Any:
    with MediaServer({f"/{n}": data(n) for n in MIME}) as srv:
        yield srv


@pytest.fixture(scope="module")
def server(module_server_factory, media_engine: str) -> Server:  # type: ignore[no-untyped-def]
    return module_server_factory(  # type: ignore[no-any-return]
        *engine_args(media_engine, "--allow-private-media-hosts", "--no-warmup")
    )


def gen(server: Server, **body: Any) -> httpx.Response:
    return httpx.post(server.url + "/generate", json=body, timeout=120)


def ok(resp: httpx.Response) -> Any:
    assert resp.status_code == 200, resp.text
    return resp.json()


def prompt_tokens(server: Server, text: str, **media: Any) -> int:
    return int(meta_info(server, text, **media)["prompt_tokens"])


def meta_info(server: Server, text: str, **media: Any) -> dict[str, Any]:
    return dict(ok(gen(server, text=text, sampling_params=GREEDY, **media))["meta_info"])


@functools.cache
def _chat_growth(url: str, kind: str, name: str) -> tuple[int, int]:
    """How many prompt tokens one media part adds in the chat endpoint (the reference),
    and how many of them are the item's media tokens. The part follows ``PREFIX`` there
    too: a video's expansion starts with text, which the tokenizer joins to what precedes."""

    def usage(parts: list[dict[str, Any]]) -> dict[str, Any]:
        body = {
            "model": TINY,
            "max_tokens": 1,
            "chat_template_kwargs": {"enable_thinking": False},
            "messages": [{"role": "user", "content": [{"type": "text", "text": PREFIX}, *parts]}],
        }
        resp = httpx.post(url + "/v1/chat/completions", json=body, timeout=120)
        assert resp.status_code == 200, resp.text
        return dict(resp.json()["usage"])

    part = {"type": f"{kind}_url", f"{kind}_url": {"url": data_uri(name)}}
    with_media = usage([part])
    grown = with_media["prompt_tokens"] - usage([])["prompt_tokens"]
    return grown, with_media["prompt_tokens_details"][f"{kind}_tokens"]


def chat_growth(server: Server, kind: str, name: str) -> tuple[int, int]:
    return _chat_growth(server.url, kind, name)


def media_prep_count(server: Server) -> float:
    text = httpx.get(server.url + "/metrics").text
    found = re.search(r"^omni_sglang_media_preparation_seconds_count (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


@pytest.mark.parametrize(
    ("field", "kind", "name", "how"),
    [
        ("image_data", "image", "a.png", "base64"),
        ("image_data", "image", "a.png", "data_uri"),
        ("image_data", "image", "b.png", "url"),
        ("image_data", "image", "b.png", "list"),
        ("video_data", "video", "v.mp4", "base64"),
        ("video_data", "video", "v.mp4", "url"),
        ("audio_data", "audio", "a.wav", "base64"),
        ("audio_data", "audio", "a.mp3", "data_uri"),
    ],
)
def test_media_goes_into_the_prompt(
    server: Server, media: Any, field: str, kind: str, name: str, how: str
) -> None:
    item = {
        "base64": b64(name),
        "data_uri": data_uri(name),
        "url": f"{media.url}/{name}",
        "list": [b64(name)],
    }[how]
    grown, media_tokens = chat_growth(server, kind, name)  # the chat endpoint's count
    before = media_prep_count(server)
    meta = meta_info(server, PREFIX + PLACEHOLDER[kind], **{field: item})
    without = meta_info(server, PREFIX)
    assert media_tokens > 0
    assert meta["prompt_tokens"] - without["prompt_tokens"] == grown >= media_tokens
    # SGLang's meta_info counts a modality's tokens, when the prompt has any.
    assert meta[f"{kind}_tokens"] == media_tokens and f"{kind}_tokens" not in without
    assert media_prep_count(server) == before + 1


def media_runs(server: Server, tokenizer: Any, text: str, **media: Any) -> list[int]:
    """Lengths of the runs of media positions in the prompt the engine got, in order.
    The CPU engine reports the placeholder token there; SGLang's input logprobs report
    id 0 (the positions hold each item's hash-derived ``pad_value`` there, not a token;
    0 never occurs in the tiny tokenizer's text, it is ``<pad>``)."""
    placeholders = {tokenizer.convert_tokens_to_ids(t) for t in PLACEHOLDER.values()}
    body = ok(
        gen(
            server,
            text=text,
            return_logprob=True,
            logprob_start_len=0,
            sampling_params={"max_new_tokens": 1},
            **media,
        )
    )
    ids = [entry[1] for entry in body["meta_info"]["input_token_logprobs"]]
    assert len(ids) == body["meta_info"]["prompt_tokens"]
    media_ids = [t if t in placeholders or t == 0 else None for t in ids]
    return [len(list(run)) for tok, run in itertools.groupby(media_ids) if tok is not None]


def test_mixed_kinds_take_their_own_placeholders(server: Server, tiny_model_path: Path) -> None:
    """Each placeholder takes the next item of its kind, whatever the field order."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    small, large = (chat_growth(server, "image", name)[1] for name in ("a.png", "b.png"))
    sound = chat_growth(server, "audio", "a.wav")[1]
    assert small != large
    a, b, wav = b64("a.png"), data_uri("b.png"), b64("a.wav")
    text = PREFIX + "<so_embedding> then <image> and <image>"
    runs = media_runs(server, tokenizer, text, image_data=[a, b], audio_data=wav)
    assert runs == [sound, small, large]
    runs = media_runs(server, tokenizer, text, image_data=[b, a], audio_data=wav)
    assert runs == [sound, large, small]
    text = PREFIX + "<image>, <so_embedding>, <image>"
    runs = media_runs(server, tokenizer, text, audio_data=wav, image_data=[b, a])
    assert runs == [large, sound, small]


def test_warnings_and_stream(server: Server) -> None:
    body = {"text": PREFIX + "<image>", "image_data": b64("a.gif"), "sampling_params": GREEDY}
    resp = gen(server, **body)
    whole = ok(resp)["text"]
    assert "first frame" in resp.headers.get("Warning", "")
    with httpx.stream(
        "POST", server.url + "/generate", json={**body, "stream": True}, timeout=120
    ) as r:
        assert r.status_code == 200
        assert "first frame" in r.headers.get("Warning", "")
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: {")]
    assert events and events[-1]["text"] == whole
    assert events[-1]["meta_info"]["prompt_tokens"] == resp.json()["meta_info"]["prompt_tokens"]


def test_batch_with_an_image_per_prompt(server: Server) -> None:
    texts = [PREFIX + "<image>", PREFIX + "<image>", PREFIX]
    batch = ok(
        gen(
            server,
            text=texts,
            image_data=[b64("a.png"), [data_uri("b.png")], None],
            sampling_params=GREEDY,
        )
    )
    singles = [
        ok(gen(server, text=texts[0], image_data=b64("a.png"), sampling_params=GREEDY)),
        ok(gen(server, text=texts[1], image_data=b64("b.png"), sampling_params=GREEDY)),
        ok(gen(server, text=texts[2], sampling_params=GREEDY)),
    ]
    got = [(b["meta_info"]["prompt_tokens"], b["text"]) for b in batch]
    want = [(s["meta_info"]["prompt_tokens"], s["text"]) for s in singles]
    assert got == want
    assert len({n for n, _ in got}) == 3  # three different prompts, not one image twice
    # One item for every prompt (what the frontend's select sends).
    shared = ok(gen(server, text=texts[:2], image_data=b64("a.png"), sampling_params=GREEDY))
    assert [b["meta_info"]["prompt_tokens"] for b in shared] == [got[0][0]] * 2


def test_input_ids_with_media_are_decoded(server: Server, tiny_model_path: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    ids = tokenizer(PREFIX + "<image>", add_special_tokens=False).input_ids
    by_ids = ok(gen(server, input_ids=ids, image_data=b64("a.png"), sampling_params=GREEDY))
    by_text = ok(
        gen(server, text=PREFIX + "<image>", image_data=b64("a.png"), sampling_params=GREEDY)
    )
    assert by_ids["meta_info"]["prompt_tokens"] == by_text["meta_info"]["prompt_tokens"]
    assert by_ids["text"] == by_text["text"]


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        (
            {"text": ["<image>", "<image>"], "image_data": [b64("a.png")]},
            "image_data",
            "batch of 2",
        ),
        ({"text": "<image>", "image_data": {"url": "x"}}, "image_data", "is an object"),
        ({"text": "<image>", "image_data": [7]}, "image_data", "image_data[0] is a number"),
        (
            {"text": ["<image>"], "image_data": [[["x"]]]},
            "image_data",
            "image_data[0][0] is a list",
        ),
        ({"text": "<video>", "video_data": ""}, "video_data", "empty string"),
        (
            {"text": "<image>", "image_data": [b64("a.png")] * 2},
            "image_data",
            "1 '<image>' placeholder(s) for 2",
        ),
        ({"text": "no placeholder", "image_data": b64("a.png")}, "image_data", "0 '<image>'"),
        ({"text": "<video><image>", "image_data": b64("a.png")}, "video_data", "1 '<video>'"),
        (
            {"text": ["a", "b <image>"], "image_data": [None, None, b64("a.png")]},
            "image_data",
            "3 entries",
        ),
        ({"text": "<video>", "video_data": b64("a.png")}, "video_data", "must hold a video"),
        ({"text": "<image>", "image_data": "video:" + b64("a.png")}, "image_data", "sgl.video"),
        ({"text": "<image>", "image_data": "cat.png"}, "image_data", "not an http(s) url"),
        ({"text": "<image>", "image_data": "file:///etc/passwd"}, "image_data", "file://"),
        ({"text": "<image>", "image_data": "AAAA"}, "image_data", "not a recognised"),
        ({"input_ids": [5, 6], "image_data": b64("a.png")}, "image_data", "decoded input_ids"),
    ],
)
def test_bad_media_is_a_400(
    server: Server, body: dict[str, Any], param: str, fragment: str
) -> None:
    resp = gen(server, sampling_params=GREEDY, **body)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert fragment.lower() in error["message"].lower()
    assert error["param"] == param


def test_too_many_items(server: Server) -> None:
    resp = gen(server, text="<image>" * 17, image_data=[b64("a.png")] * 17)
    assert resp.status_code == 400, resp.text
    assert "limit is 16" in resp.json()["error"]["message"]
    # A batch counts distinct items: one shared image is fetched and decoded once.
    texts = ["<image>"] * 17
    assert gen(server, text=texts, image_data=b64("a.png"), sampling_params=GREEDY).is_success
    many = [synth_png(i) for i in range(17)]
    resp = gen(server, text=texts, image_data=many, sampling_params=GREEDY)
    assert resp.status_code == 400 and "17 media items" in resp.json()["error"]["message"]


def synth_png(i: int) -> str:
    return base64.b64encode(synth.image_bytes("PNG", (32 + i, 32))).decode()


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://10.0.0.1/a.png", "private"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://[::ffff:192.168.0.1]/a.png", "private"),
        ("local", "loopback"),
    ],
)
def test_private_urls_are_refused(tiny_server: Server, media: Any, url: str, fragment: str) -> None:
    """The default server (SSRF guard on) refuses what the chat endpoint refuses."""
    url = f"{media.url}/a.png" if url == "local" else url
    resp = gen(tiny_server, text="<image>", image_data=url, sampling_params=GREEDY)
    assert resp.status_code == 400, resp.text
    assert fragment in resp.json()["error"]["message"].lower()
    assert media.hits["/a.png"] == 0
    assert httpx.get(tiny_server.url + "/v1/health/ready").status_code == 200


@pytest.fixture(scope="module")
def frontend(server: Server):  # type: ignore[no-untyped-def]
    import sglang as sgl

    return sgl, sgl.RuntimeEndpoint(server.url)


@pytest.mark.sglang
def test_frontend_program_with_an_image(frontend, server: Server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sgl, backend = frontend
    picture = tmp_path / "picture.png"
    picture.write_bytes(data("b.png"))
    template = backend.chat_template
    # The frontend picks its chat template from /get_model_info's model_path; its image
    # token must be the placeholder our modality processor expands.
    assert template.image_token.strip() == "<image>"

    @sgl.function
    def describe(s, path):  # type: ignore[no-untyped-def]
        question = "What is in the picture?"
        s += sgl.user((sgl.image(path) + question) if path else question)
        s += sgl.assistant(sgl.gen("answer", max_tokens=4, temperature=0, ignore_eos=True))
        s += sgl.user("Is it red?")
        s += sgl.assistant(sgl.select("red", choices=["yes", "no"]))

    seen = describe.run(path=str(picture), backend=backend)
    blind = describe.run(path=None, backend=backend)
    assert seen.error() is None and blind.error() is None
    assert seen["red"] in ("yes", "no") and seen.get_meta_info("answer")["completion_tokens"] == 4
    # What the frontend should have sent for the answer: its prompt and the picture.
    user, user_end = template.role_prefix_and_suffix["user"]
    prompt = user + template.image_token + "What is in the picture?" + user_end
    prompt += template.role_prefix_and_suffix["assistant"][0]
    expected = prompt_tokens(server, prompt, image_data=b64("b.png"))
    _, image_tokens = chat_growth(server, "image", "b.png")
    seen_tokens = seen.get_meta_info("answer")["prompt_tokens"]
    assert seen_tokens == expected
    assert seen_tokens - blind.get_meta_info("answer")["prompt_tokens"] >= image_tokens > 0
