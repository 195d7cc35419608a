"""Run as ``python -m tests.omni_load_check MODEL_DIR``: builds SGLang's own
``NemotronH_Nano_Omni_Reasoning_V3`` from the folder's ``config.json`` (single process,
gloo), fills every tensor with NaN, loads the checkpoint through the model's own
``load_weights`` and prints, as JSON, the tensors still NaN (none were loaded into
them). A subprocess, because it builds SGLang's process groups."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import sglang.srt.utils  # noqa: F401 - resolves SGLang's platform first
import torch


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(model_dir: Path) -> dict[str, list[str]]:
    from safetensors.torch import load_file
    from sglang.srt import runtime_context
    from sglang.srt.configs.nano_nemotron_vl import NemotronH_Nano_Omni_Reasoning_V3_Config
    from sglang.srt.distributed import parallel_state
    from sglang.srt.models.nano_nemotron_vl import NemotronH_Nano_Omni_Reasoning_V3
    from sglang.srt.server_args import ServerArgs

    config = json.loads((model_dir / "config.json").read_text())
    config.pop("model_type")
    hf_config = NemotronH_Nano_Omni_Reasoning_V3_Config(**config)
    args = ServerArgs(model_path=str(model_dir), device="cpu")
    ranks = runtime_context.SpawnRanks(world_rank=0, gpu_id=None)
    runtime_context.publish(args, role="scheduler", ranks=ranks)
    parallel_state.init_distributed_environment(
        world_size=1,
        rank=0,
        distributed_init_method=f"tcp://127.0.0.1:{_free_port()}",
        local_rank=0,
        backend="gloo",
    )
    parallel_state.initialize_model_parallel(backend="gloo")
    model = NemotronH_Nano_Omni_Reasoning_V3(hf_config)
    # Non-persistent buffers (rotary frequencies) are computed, never loaded.
    persistent = set(model.state_dict())
    tensors = {n: t for n, t in model.state_dict(keep_vars=True).items() if t.is_floating_point()}
    with torch.no_grad():
        for tensor in tensors.values():
            tensor.fill_(float("nan"))
    model.load_weights(list(load_file(str(model_dir / "model.safetensors")).items()))
    unloaded = [n for n, t in tensors.items() if n in persistent and torch.isnan(t).any()]
    return {"unloaded": unloaded, "loaded": sorted(set(tensors) - set(unloaded))}


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
