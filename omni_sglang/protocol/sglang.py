"""Wire types of SGLang's native ``/generate``: the fields of ``GenerateReqInput`` this
server honours; fields an engine built on SGLang passes on unchanged (``PASSED_TO_SGLANG``);
SGLang's other fields at their neutral values (as SGLang's own clients send them), a
non-neutral one refused with its name; names SGLang does not know refused."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from omni_sglang.sglang_source import NOT_LITERAL, generate_req_input_fields

PerItem = Any  # a value, or a list with one value per batch item
#: Why a GenerateReqInput field we do not honour cannot take another value here.
_WHY_NOT = {
    "lora_path": "this server loads no LoRA adapters",
    "lora_id": "this server loads no LoRA adapters",
    "return_hidden_states": "this server does not return hidden states",
    "session_params": "SGLang sessions are not served here",
    "input_embeds": "send text or input_ids",
}
#: GenerateReqInput fields an engine running SGLang (``Engine.passes_sglang_fields``)
#: hands on unchanged when set: scheduling and bookkeeping hints that do not change the
#: shape of the answer this server builds. Another engine refuses them by name.
PASSED_TO_SGLANG = frozenset(
    {
        "priority",  # honoured with SGLang's --enable-priority-scheduling
        "extra_key",  # salts the radix-cache key: requests share a prefix only within one
        "routing_key",
        "conversation_id",
        "log_metrics",
        "no_logs",
        "custom_labels",
    }
)
_MEDIA = (
    "{0} items (http(s) URL, data: URI or base64 string): one or a list for one prompt; "
    "for a batch one entry per prompt (item, list or null) or one item for all. The text "
    "holds one placeholder per item: the one the chat template writes for {0} parts."
)


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    text: str | list[str] | None = None
    input_ids: list[int] | list[list[int]] | None = None
    sampling_params: dict[str, Any] | list[dict[str, Any]] | None = None
    # Shapes and items are checked in ``api/generate_media.py``.
    image_data: Any = Field(None, description=_MEDIA.format("image"))
    video_data: Any = Field(None, description=_MEDIA.format("video"))
    audio_data: Any = Field(None, description=_MEDIA.format("audio"))
    return_logprob: bool | list[bool] = False
    logprob_start_len: int | list[int] = -1
    top_logprobs_num: int | list[int] = Field(0)
    return_text_in_logprobs: bool = False
    stream: bool = False
    rid: str | list[str] | None = None
    custom_logit_processor: str | list[str] | None = None
    #: The ``PASSED_TO_SGLANG`` fields the client set (filled by the validator below, not
    #: a wire name).
    sglang_fields: dict[str, Any] = Field(default_factory=dict, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _sglang_fields_at_neutral(cls, data: Any) -> Any:
        """Drop SGLang's fields we do not honour when they hold their neutral value (null
        or SGLang's default); collect the ones passed to SGLang; refuse the others, by
        name and why."""
        if not isinstance(data, dict):
            return data
        sglang = generate_req_input_fields()
        ours = cls.model_fields
        kept: dict[str, Any] = {}
        passed: dict[str, Any] = {}
        for name, value in data.items():
            if name == "sglang_fields":
                kept[name] = value  # not a wire name: refused as an extra field below
                continue
            if name in ours:
                if value is not None:  # null is "unset" to SGLang: our default then
                    kept[name] = value
                continue
            if name not in sglang:
                kept[name] = value  # unknown to SGLang too: refused as an extra field
                continue
            default = sglang[name]
            if value is None or (default is not NOT_LITERAL and value == default):
                continue
            if name in PASSED_TO_SGLANG:
                passed[name] = value
                continue
            why = _WHY_NOT.get(name, "this server's /generate does not honour it")
            neutral = "null" if default in (None, NOT_LITERAL) else repr(default)
            raise ValueError(f"'{name}' must be unset or {neutral} here: {why}")
        if "sglang_fields" in kept:
            raise ValueError("'sglang_fields' is not a /generate field")
        if passed:
            kept["sglang_fields"] = passed
        return kept

    @model_validator(mode="after")
    def _one_input(self) -> GenerateRequest:
        if (self.text is None) == (self.input_ids is None):
            raise ValueError("give exactly one of 'text' or 'input_ids'")
        return self

    @property
    def is_batch(self) -> bool:
        if self.text is not None:
            return isinstance(self.text, list)
        return bool(self.input_ids) and isinstance(self.input_ids[0], list)  # type: ignore[index]

    @property
    def batch_size(self) -> int:
        if not self.is_batch:
            return 1
        return len(self.text if self.text is not None else self.input_ids)  # type: ignore[arg-type]

    def item(self, field: str, index: int, default: Any) -> Any:
        """A per-item field: a list is indexed by batch item, a scalar applies to all."""
        value = getattr(self, field)
        if isinstance(value, list) and field != "input_ids":
            if len(value) != self.batch_size:
                raise ValueError(
                    f"'{field}' has {len(value)} entries for a batch of {self.batch_size}"
                )
            value = value[index]
        return default if value is None else value


class ConcateAndAppendRequest(BaseModel):
    """What SGLang's frontend (``RuntimeEndpoint.concatenate_and_append``) posts to
    ``/concate_and_append_request`` when a program joins forks with
    ``mode="concate_and_append"``: the forks' state ids and the parent's."""

    model_config = ConfigDict(extra="forbid", strict=True)

    src_rids: list[str] = Field(max_length=256)
    dst_rid: str
