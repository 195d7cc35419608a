"""The typed interface of each plugin kind.

A plugin is the object an entry point names (or a class of it, instantiated with no
arguments). Each kind's interface is small on purpose: a factory with an ``api_version``
and one ``create``/``build`` method returning a per-request (or per-server) worker.
The registry checks ``isinstance`` against these ABCs and the API version on load.

Heavy dependencies (SGLang, torch) must be imported inside the methods, never at the
module top of a plugin: listing plugins must stay cheap.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from omni_sglang.config import ServerConfig
    from omni_sglang.engines.base import Engine

#: Bumped when an interface below changes incompatibly. A plugin declares the version
#: it was written against; a mismatch is refused at load with a clear error.
PLUGIN_API_VERSION = 1


class Plugin(ABC):  # noqa: B024 - a common root for the kinds' ABCs, no method of its own
    api_version: ClassVar[int] = PLUGIN_API_VERSION
    #: One line shown by ``--list-plugins``.
    description: ClassVar[str] = ""


# --- engines ----------------------------------------------------------------------------


class EnginePlugin(Plugin):
    """Builds an engine backend from the server config."""

    @abstractmethod
    def build(self, config: ServerConfig) -> Engine: ...


# --- reasoning parsers --------------------------------------------------------------------


@dataclass
class ReasoningSplit:
    reasoning: str = ""
    content: str = ""


class ReasoningParser(ABC):
    """Per-request, stateful: splits the model's text into reasoning and content.

    Contract in SGLang's detector style: ``feed(chunk)`` for each streamed piece, then
    ``finish()``; the concatenation of all returned splits equals ``parse(full_text)``.
    """

    @abstractmethod
    def feed(self, text: str) -> ReasoningSplit: ...

    @abstractmethod
    def finish(self) -> ReasoningSplit: ...

    @property
    @abstractmethod
    def in_reasoning(self) -> bool:
        """True while the text fed so far ends inside the reasoning."""

    def parse(self, text: str) -> ReasoningSplit:
        head, tail = self.feed(text), self.finish()
        return ReasoningSplit(head.reasoning + tail.reasoning, head.content + tail.content)


class ReasoningParserPlugin(Plugin):
    @abstractmethod
    def create(self, *, prompt: str) -> ReasoningParser:
        """A parser for one request. ``prompt`` is the rendered prompt: whether the
        template opened a reasoning block is the model's business, read from it here."""

    def sampling_defaults(self, prompt: str) -> dict[str, Any]:
        """SGLang sampling params the model's card recommends for this prompt's mode;
        used for the fields a request leaves unset."""
        return {}

    def thinking_switch(self, enabled: bool) -> dict[str, Any]:
        """The chat-template kwargs that turn thinking on or off (``reasoning_effort``
        maps onto them). The default is the common ``enable_thinking`` switch."""
        return {"enable_thinking": enabled}

    def reasoning_end_ids(self, prompt: str, tokenizer: Any) -> list[int] | None:
        """Token ids that close the reasoning this prompt opened (None: none opened).
        A grammar (tool choice, response format) starts only after them."""
        return None


# --- tool parsers ---------------------------------------------------------------------------


@dataclass
class ToolCall:
    name: str
    arguments: str  # a JSON object, as OpenAI's ``function.arguments``


@dataclass
class ToolCallDelta:
    """A streamed piece: ``index`` identifies the call; name comes first, then argument text."""

    index: int
    name: str | None = None
    arguments: str = ""


@dataclass
class ToolParseResult:
    content: str = ""
    calls: list[ToolCall] = field(default_factory=list)


@dataclass
class ToolStreamStep:
    content: str = ""
    calls: list[ToolCallDelta] = field(default_factory=list)


class ToolParser(ABC):
    """Per-request, stateful: finds tool calls in the content text."""

    @abstractmethod
    def feed(self, text: str) -> ToolStreamStep: ...

    @abstractmethod
    def finish(self) -> ToolStreamStep: ...

    @abstractmethod
    def parse(self, text: str) -> ToolParseResult: ...


class ToolParserPlugin(Plugin):
    @abstractmethod
    def create(self, tools: Sequence[Mapping[str, Any]], *, parallel: bool = True) -> ToolParser:
        """A parser for one request; with ``parallel`` false only the first call counts."""

    def constraint(
        self, tools: Sequence[Mapping[str, Any]], *, function: str | None, parallel: bool
    ) -> dict[str, str] | None:
        """SGLang sampling params (``{"structural_tag": ...}`` or ``{"ebnf": ...}``) that
        force a call in the model's format: to ``function`` if named, else to any of
        ``tools``. None: cannot force."""
        return None

    def auto_constraint(
        self, tools: Sequence[Mapping[str, Any]], *, parallel: bool
    ) -> dict[str, str] | None:
        """SGLang sampling params for ``tool_choice`` "auto": text stays free, but a call
        the model opens is held to its tool's schema. None: auto stays unconstrained."""
        return None


# --- logit processors -------------------------------------------------------------------------


class LogitProcessorPlugin(Plugin):
    """A logits processor that runs both in SGLang's scheduler and in the CPU engine.

    ``processor_class()`` returns a subclass of SGLang's ``CustomLogitProcessor``
    (imported lazily: SGLang costs seconds to import). ``custom_params`` builds the
    per-request parameters that SGLang passes in ``sampling_params["custom_params"]``.
    """

    @abstractmethod
    def processor_class(self) -> type: ...

    @abstractmethod
    def custom_params(self, request: Mapping[str, Any], tokenizer: Any) -> dict[str, Any] | None:
        """Parameters for this request, or None when the processor must not run.

        ``request`` holds ``prompt`` (rendered), ``thinking_token_budget`` (None: no
        cap), ``grace_tokens`` (None: the plugin's default), ``budget_mode``
        (``maximum``: the budget is never exceeded; ``overshoot``: NVIDIA's rule),
        ``answer_reserve`` and ``max_new_tokens``."""


# --- modality processors ---------------------------------------------------------------------


@dataclass
class MediaItem:
    """One decoded media input, ready for an engine."""

    modality: str  # "image" | "video" | "audio"
    data: Any
    options: dict[str, Any] = field(default_factory=dict)
    #: The encoded bytes as fetched, for engines that decode media themselves (SGLang).
    source: bytes | None = field(default=None, repr=False)


@dataclass
class ProcessedPrompt:
    input_ids: list[int]
    items: list[MediaItem] = field(default_factory=list)


@dataclass
class UnexpandedPrompt:
    """A prompt for an engine that expands media itself (SGLang's multimodal processor):
    token ids with one placeholder per item, and the media in SGLang's ``image_data`` /
    ``video_data`` / ``audio_data`` order and form."""

    input_ids: list[int]
    image_data: list[Any] = field(default_factory=list)
    video_data: list[Any] = field(default_factory=list)
    audio_data: list[Any] = field(default_factory=list)


class ModalityProcessor(ABC):
    #: The modalities this processor accepts, e.g. ("image", "video", "audio").
    modalities: tuple[str, ...] = ()

    @abstractmethod
    def process(self, prompt: str, items: Sequence[MediaItem]) -> ProcessedPrompt:
        """Expand the placeholders of ``prompt`` for ``items`` and tokenize it."""

    def placeholders(self) -> dict[str, str]:
        """``{placeholder text: modality}``: what marks an item's place in a prompt (the
        chat template writes these for media parts). Empty: items go in field order."""
        return {}

    def unexpanded(self, prompt: str, items: Sequence[MediaItem]) -> UnexpandedPrompt:
        """The same request for an engine that expands the placeholders itself. A
        processor that cannot prepare media for such an engine keeps this default."""
        raise NotImplementedError(
            f"{type(self).__name__} cannot prepare media for an engine that expands it itself"
        )


class ModalityProcessorPlugin(Plugin):
    #: The longest audio (seconds) the model hears in one prompt; longer uploads to
    #: ``/v1/audio/transcriptions`` are cut into windows this long, at quiet points.
    #: None: the model is not offered for transcription.
    transcription_window_seconds: float | None = None

    @abstractmethod
    def create(self, model_config: Mapping[str, Any], tokenizer: Any) -> ModalityProcessor: ...

    def transcription_prompt(
        self, *, translate: bool, language: str | None, prompt: str | None
    ) -> str:
        """The user turn's text that asks the model to transcribe (or translate into
        English) the audio beside it; ``prompt``: the client's context or spelling hints.
        Override it with ``transcription_window_seconds``: a plugin that declares no prompt
        offers no transcription (the routes answer 400, never call this)."""
        raise NotImplementedError
