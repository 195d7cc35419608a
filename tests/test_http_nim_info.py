"""NIM's ``/v1/license`` and ``/v1/manifest`` (issue 15, part 5): what the served
checkpoint's folder says, in NIM's shapes, with no network access."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from omni_sglang.checkpoint_info import HASHED_BYTES, license_info
from tests.conftest import Server

CARD = (
    "---\nlicense: other\nlicense_name: test-model-license\nlicense_link: https://x.test/l\n---\n"
)


def get(server: Server, path: str) -> httpx.Response:
    return httpx.get(server.url + path, timeout=60)


def test_built_in_model_carries_this_packages_license(tiny_server: Server) -> None:
    body = get(tiny_server, "/v1/license").json()
    assert body["name"] == "Apache-2.0" and body["type"] == "file"
    assert "random weights" in body["content"]
    assert body["sha"] == hashlib.sha1(body["content"].encode()).hexdigest()
    assert body["size"] == len(body["content"])


def test_manifest_lists_the_checkpoint_files(tiny_server: Server) -> None:
    root = Path(get(tiny_server, "/v1/models").json()["data"][0]["root"])
    body = get(tiny_server, "/v1/manifest").json()
    assert body["repository_override"] == ""
    (model,) = yaml.safe_load(body["manifest_file"])["models"]
    files = {entry["path"]: entry for entry in model["files"]}
    assert set(files) == {p.name for p in root.iterdir() if p.is_file()}
    config = (root / "config.json").read_bytes()
    assert files["config.json"]["checksum"] == "sha256:" + hashlib.sha256(config).hexdigest()
    weights = root / "model.safetensors"
    assert files["model.safetensors"]["size_bytes"] == weights.stat().st_size
    assert ("checksum" in files["model.safetensors"]) == (weights.stat().st_size <= HASHED_BYTES)
    assert model["size_bytes"] == sum(e["size_bytes"] for e in files.values())


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory, tiny_model_path: Path) -> Path:
    """A copy of the tiny checkpoint served by path, as a user's own would be."""
    folder = tmp_path_factory.mktemp("ckpt") / "model"
    shutil.copytree(tiny_model_path, folder)
    return folder


def test_a_checkpoints_own_license_file(module_server_factory: Any, checkpoint: Path) -> None:
    (checkpoint / "LICENSE.txt").write_text("Test licence terms.\n")
    (checkpoint / "README.md").write_text(CARD + "# A model\n")
    server = module_server_factory("--model-path", str(checkpoint), "--no-warmup")
    body = get(server, "/v1/license").json()
    assert body["name"] == "LICENSE.txt" and body["content"] == "Test licence terms.\n"
    assert body["url"] == "https://x.test/l"  # from the model card
    assert body["path"] == str(checkpoint / "LICENSE.txt")


def test_a_model_card_license_and_none_at_all(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text(CARD)
    body = license_info(str(tmp_path), False)
    assert body["name"] == "test-model-license" and "license: other" in body["content"]
    bare = tmp_path / "bare"
    bare.mkdir()
    with pytest.raises(Exception, match="no license file"):
        license_info(str(bare), False)


def test_no_license_is_a_404(
    module_server_factory: Any, tmp_path_factory: Any, tiny_model_path: Path
) -> None:
    folder = tmp_path_factory.mktemp("bare") / "model"
    shutil.copytree(tiny_model_path, folder)
    server = module_server_factory("--model-path", str(folder), "--no-warmup")
    response = get(server, "/v1/license")
    assert response.status_code == 404
    assert "no license file" in response.json()["error"]["message"]
