"""Where TRELLIS.2's files are found: the folder first, then another repository on the Hub."""

from pathlib import Path

import pytest

from genesis3d.errors import WeightsError
from genesis3d.models.trellis2.components import locate

SS_DECODER = "microsoft/TRELLIS-image-large/ckpts/ss_dec_conv3d_16l8_fp16"
SUFFIXES = (".json", ".safetensors")


def _touch(base: Path, suffixes=SUFFIXES) -> None:
    for suffix in suffixes:
        path = Path(f"{base}{suffix}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"{}")


def test_a_file_of_the_folder_is_found_there_or_named_missing(tmp_path):
    _touch(tmp_path / "ckpts" / "a")
    assert locate(tmp_path, "ckpts/a", SUFFIXES) == tmp_path / "ckpts" / "a"
    # A path of this repository is never looked for on the Hub.
    with pytest.raises(WeightsError, match=r"ckpts/b\.json, ckpts/b\.safetensors not found"):
        locate(tmp_path, "ckpts/b", SUFFIXES)


def test_another_repository_is_taken_from_the_folder_first_then_the_hub_cache(
    tmp_path, monkeypatch
):
    import huggingface_hub.constants

    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(WeightsError, match="nor in the Hugging Face cache"):
        locate(folder, SS_DECODER, SUFFIXES, download=False)
    # The cache as huggingface_hub lays it out.
    repo = tmp_path / "cache" / "models--microsoft--TRELLIS-image-large"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    _touch(repo / "snapshots" / "abc123" / "ckpts" / "ss_dec_conv3d_16l8_fp16")
    found = locate(folder, SS_DECODER, SUFFIXES, download=False)
    assert found == repo / "snapshots" / "abc123" / "ckpts" / "ss_dec_conv3d_16l8_fp16"
    # A copy in the folder wins.
    _touch(folder / SS_DECODER)
    assert locate(folder, SS_DECODER, SUFFIXES, download=False) == folder / SS_DECODER


def test_a_whole_repository_resolves_to_its_snapshot(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    repo = tmp_path / "cache" / "models--facebook--dinov3-vitl16-pretrain-lvd1689m"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("r1")
    (repo / "snapshots" / "r1").mkdir(parents=True)
    (repo / "snapshots" / "r1" / "model.safetensors").write_bytes(b"")
    found = locate(
        tmp_path,
        "facebook/dinov3-vitl16-pretrain-lvd1689m",
        ("/model.safetensors",),
        download=False,
    )
    assert found == repo / "snapshots" / "r1"
