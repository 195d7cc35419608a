"""Long audio -> windows the model hears whole, cut at quiet points.

SGLang's (and vLLM's) transcription endpoints split the same way
(``sglang/srt/entrypoints/openai/audio_chunking.py``): walk the audio in window-long
strides and cut each at the quietest 100 ms (lowest RMS) of its last second, so a cut
lands in a pause rather than mid-word; windows are contiguous, so their transcripts
join in order. Restated rather than imported: that module imports ``sglang.srt.utils``
(11 s here, measured) and decodes the file again; we already hold its samples.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

#: Where in a window's tail a cut may land, and the stride its energy is measured over.
SEARCH_SECONDS = 1.0
STRIDE_SECONDS = 0.1


@dataclass(frozen=True)
class AudioWindow:
    start: float  # seconds into the file
    end: float
    samples: np.ndarray

    def wav(self, sample_rate: int) -> bytes:
        import soundfile

        buffer = io.BytesIO()
        soundfile.write(buffer, self.samples, sample_rate, format="WAV", subtype="PCM_16")
        return buffer.getvalue()


def _quietest(samples: np.ndarray, start: int, end: int, stride: int) -> int:
    """The start of the quietest ``stride``-long stretch in ``samples[start:end]``."""
    best, best_energy = start, np.inf
    for at in range(start, max(start + 1, end - stride), stride):
        energy = float(np.sqrt(np.mean(np.square(samples[at : at + stride], dtype=np.float64))))
        if energy < best_energy:
            best, best_energy = at, energy
    return best


def split_at_quiet_points(
    samples: np.ndarray, sample_rate: int, window_seconds: float
) -> list[AudioWindow]:
    size = int(sample_rate * window_seconds)
    search = min(int(sample_rate * SEARCH_SECONDS), size // 2)
    stride = max(1, int(sample_rate * STRIDE_SECONDS))
    windows, at, total = [], 0, len(samples)
    while at < total:
        if at + size >= total:
            cut = total
        else:
            cut = _quietest(samples, at + size - search, at + size, stride)
            cut = cut if cut > at else at + size  # silence everywhere: cut at the limit
        windows.append(AudioWindow(at / sample_rate, cut / sample_rate, samples[at:cut]))
        at = cut
    return windows
