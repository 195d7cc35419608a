"""A transcript's windows -> OpenAI's response formats: ``json``, ``text``,
``verbose_json`` (segments with times), ``srt`` and ``vtt`` subtitles."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Segment:
    """One audio window's transcript (the model marks no finer times)."""

    start: float
    end: float
    text: str = ""
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    input_tokens: int = 0


def full_text(segments: list[Segment]) -> str:
    return " ".join(s.text.strip() for s in segments if s.text.strip())


def usage(segments: list[Segment]) -> dict[str, Any]:
    inputs = sum(s.input_tokens for s in segments)
    outputs = sum(len(s.token_ids) for s in segments)
    return {
        "type": "tokens",
        "input_tokens": inputs,
        "output_tokens": outputs,
        "total_tokens": inputs + outputs,
    }


def _compression_ratio(text: str) -> float:
    """Whisper's repetition check: UTF-8 bytes over their zlib size."""
    raw = text.encode()
    return len(raw) / len(zlib.compress(raw)) if raw else 0.0


def verbose_json(
    segments: list[Segment], task: str, language: str | None, temperature: float
) -> dict[str, Any]:
    items = []
    for index, s in enumerate(segments):
        items.append(
            {
                "id": index,
                "seek": round(s.start * 100),  # Whisper's unit: 10 ms frames
                "start": round(s.start, 3),
                "end": round(s.end, 3),
                "text": s.text.strip(),
                "tokens": s.token_ids,
                "temperature": temperature,
                "avg_logprob": sum(s.logprobs) / len(s.logprobs) if s.logprobs else None,
                "compression_ratio": _compression_ratio(s.text.strip()),
                # The model has no no-speech estimate (Whisper's comes from a token of
                # its own): left out rather than made up.
                "no_speech_prob": None,
            }
        )
    return {
        "task": task,
        "language": language,
        "duration": round(segments[-1].end, 3) if segments else 0.0,
        "text": full_text(segments),
        "segments": items,
        # OpenAI's verbose_json bills by duration; json's usage counts the tokens
        "usage": {"type": "duration", "seconds": round(segments[-1].end, 3) if segments else 0.0},
    }


def _clock(seconds: float, decimal: str) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


def subtitles(segments: list[Segment], kind: str) -> str:
    """SubRip (``srt``) or WebVTT (``vtt``) cues, one per window with words in it."""
    decimal = "," if kind == "srt" else "."
    cues = []
    spoken = [s for s in segments if s.text.strip()]
    for number, s in enumerate(spoken, 1):
        times = f"{_clock(s.start, decimal)} --> {_clock(s.end, decimal)}"
        cue = f"{times}\n{s.text.strip()}\n"
        cues.append(f"{number}\n{cue}" if kind == "srt" else cue)
    body = "\n".join(cues)
    return f"WEBVTT\n\n{body}" if kind == "vtt" else body


class TranscriptJoiner:
    """Streamed text that adds up to ``full_text``: each window's text stripped, windows
    joined by one space (whitespace is held back until text follows it)."""

    def __init__(self) -> None:
        self.text = ""
        self._window = -1
        self._held = ""
        self._started = False

    def feed(self, window: int, piece: str) -> str:
        if window != self._window:
            self._window, self._started = window, False
            self._held = " " if self.text else ""
        if not self._started:
            piece = piece.lstrip()
            if not piece:
                return ""
            self._started = True
        body = self._held + piece
        kept = body.rstrip()
        self._held = body[len(kept) :]
        self.text += kept
        return kept
