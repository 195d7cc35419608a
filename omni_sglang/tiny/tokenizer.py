"""A small byte-level BPE tokenizer with the Nemotron 3 Omni special tokens.

Trained on a fixed built-in corpus, so two builds give byte-identical files. Tokens the
serving layer and parsers look for in text (``<think>``, ``<tool_call>`` ...) are added
as non-special tokens, as in the real tokenizer, so ``skip_special_tokens`` keeps them;
ChatML and media placeholders are special.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

CHATML_TOKENS = ["<|im_start|>", "<|im_end|>"]
MEDIA_TOKENS = ["<img>", "<image>", "</img>", "<video>", "<so_start>", "<so_embedding>", "<so_end>"]
TEXT_TAG_TOKENS = [
    "<think>",
    "</think>",
    "<tool_call>",
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
]
PAD_TOKEN = "<pad>"
UNK_TOKEN = "<unk>"
BPE_VOCAB_SIZE = 1024

_CORPUS_SEED = """
The quick brown fox jumps over the lazy dog. A journey of a thousand miles begins with a
single step. What is in this image? Describe what is happening in this video, including
any speech. Transcribe and summarize this audio. You are a helpful assistant. Create a
detailed itinerary for a week-long adventure trip through Southeast Asia. What is the
derivative of x^2? The derivative of x squared is two x. Let me think about this step by
step. First, we consider the question. Then we look at the evidence and reason about it.
Finally, we answer clearly and concisely. The weather in Paris is sunny with a high of 21
degrees Celsius. The capital of France is Paris; the capital of Japan is Tokyo.
{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}
def add(a, b):\n    return a + b\n
Numbers: 0 1 2 3 4 5 6 7 8 9 10 11 12 42 100 1000 3.14 2.718 -1 true false null
This image shows a boardwalk in a field of tall grass. What would be the best season to
visit this place? Spring and early summer are usually the best seasons to visit.
"""


def corpus() -> list[str]:
    # Repetition gives the BPE trainer stable pair counts; lines keep documents short.
    lines = [line.strip() for line in _CORPUS_SEED.strip().splitlines() if line.strip()]
    return lines * 4


def chat_template() -> str:
    return files("omni_sglang.tiny").joinpath("chat_template.jinja").read_text()


def build_tokenizer(out_dir: Path) -> None:
    """Train and save a ``PreTrainedTokenizerFast`` into ``out_dir``."""
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=BPE_VOCAB_SIZE,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[PAD_TOKEN, UNK_TOKEN],
    )
    tok.train_from_iterator(corpus(), trainer=trainer)
    tok.add_special_tokens([AddedToken(t, special=True) for t in CHATML_TOKENS + MEDIA_TOKENS])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in TEXT_TAG_TOKENS])

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token=PAD_TOKEN,
        unk_token=UNK_TOKEN,
        additional_special_tokens=CHATML_TOKENS + MEDIA_TOKENS,
        model_max_length=1 << 20,
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = chat_template()
    fast.save_pretrained(str(out_dir))
