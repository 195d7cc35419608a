"""What every check gets: the client, the media it sends (made here, deterministically,
with the project's own generators) and a local HTTP server for media by URL."""

from __future__ import annotations

import base64
import io
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omni_sglang.media import synth
from omni_sglang.media.testserver import MediaServer
from omni_sglang.selftest.client import Client
from omni_sglang.selftest.result import CheckSkipped

#: name -> (content part type, MIME type, maker). The video is 10 s with a soundtrack,
#: the length of the seed's examples' clips in spirit; sizes stay small so a CPU runs it.
SAMPLES: dict[str, tuple[str, str, Any]] = {
    "image.jpg": ("image_url", "image/jpeg", lambda: synth.image_bytes("JPEG", (64, 48))),
    "image.png": ("image_url", "image/png", lambda: synth.image_bytes("PNG", (64, 48))),
    "image.gif": ("image_url", "image/gif", lambda: synth.image_bytes("GIF", (64, 48), frames=2)),
    "red.png": ("image_url", "image/png", lambda: solid_png((224, 32, 32))),
    "video.mp4": (
        "video_url",
        "video/mp4",
        lambda: synth.video_bytes(10.0, (160, 120), 10, audio=True),
    ),
    "silent.mp4": ("video_url", "video/mp4", lambda: synth.video_bytes(4.0, (160, 120), 10)),
    "audio.wav": ("audio_url", "audio/wav", lambda: synth.wav_bytes(2.0)),
    "audio.mp3": ("audio_url", "audio/mpeg", lambda: synth.audio_bytes("mp3", 2.0)),
    "audio.flac": ("audio_url", "audio/flac", lambda: synth.audio_bytes("flac", 2.0)),
    "seven.wav": ("audio_url", "audio/wav", lambda: spoken_wav("seven")),
}
#: Samples made with a command-line tool (the rest with Pillow and soundfile) -> the tool.
NEEDS_TOOL = {
    "video.mp4": "ffmpeg",
    "silent.mp4": "ffmpeg",
    "audio.mp3": "ffmpeg",
    "audio.flac": "ffmpeg",
    "seven.wav": "espeak-ng",
}


def spoken_wav(text: str) -> bytes:
    """``text`` spoken by espeak-ng (a formant synthesizer: robotic, but clear)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True)
        return path.read_bytes()


def solid_png(rgb: tuple[int, int, int], size: tuple[int, int] = (256, 256)) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, rgb).save(out, "PNG")
    return out.getvalue()


@dataclass
class Context:
    client: Client
    #: Whether the server was started by the selftest with private media hosts allowed
    #: (so media by URL from this machine's 127.0.0.1 must work).
    owns_server: bool = False
    #: The answer checks run only against a real checkpoint.
    real_model: bool = False
    max_tokens: int = 256
    media_server: MediaServer | None = None
    made: dict[str, bytes] = field(default_factory=dict)

    def data(self, name: str) -> bytes:
        """The sample's bytes, made on first use."""
        if name not in self.made:
            tool = NEEDS_TOOL.get(name)
            if tool and shutil.which(tool) is None:
                raise CheckSkipped(f"{name} is made with {tool}: install it (apt install {tool})")
            self.made[name] = SAMPLES[name][2]()
        return self.made[name]

    def data_uri(self, name: str) -> str:
        return f"data:{SAMPLES[name][1]};base64," + base64.b64encode(self.data(name)).decode()

    def part(self, name: str, url: str | None = None) -> dict[str, Any]:
        """A content part with the sample as a data: URI, or at ``url``."""
        kind = SAMPLES[name][0]
        return {"type": kind, kind: {"url": url or self.data_uri(name)}}

    def url(self, name: str) -> str:
        if self.media_server is None:
            self.media_server = MediaServer({}).__enter__()
        self.media_server.files[f"/{name}"] = self.data(name)
        return f"{self.media_server.url}/{name}"

    def ask(self, text: str, *parts: dict[str, Any], **fields: Any) -> dict[str, Any]:
        """One user turn (thinking off unless asked) that must succeed."""
        fields.setdefault("max_tokens", 8)
        fields.setdefault("chat_template_kwargs", {"enable_thinking": False})
        content = [{"type": "text", "text": text}, *parts] if parts else text
        return self.client.chat(messages=[{"role": "user", "content": content}], **fields)

    def close(self) -> None:
        if self.media_server is not None:
            self.media_server.__exit__(None, None, None)
        self.client.close()


def media_tokens(answer: dict[str, Any], kind: str) -> int:
    return int(answer["usage"]["prompt_tokens_details"].get(f"{kind}_tokens", 0))
