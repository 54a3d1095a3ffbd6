"""Strict safetensors loading on real checkpoint files written by the tests."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from genesis3d.errors import WeightsError
from genesis3d.weights.loading import load_checkpoint, load_into, load_safetensors, read_header


class Tiny(torch.nn.Module):
    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(4, width)
        self.norm = torch.nn.LayerNorm(width)
        self.head = torch.nn.Linear(width, 2)
        self.register_buffer("scale", torch.ones(2))


def _checkpoint(tmp_path, module=None, *, drop=(), extra=None, dtype=None):
    module = module or Tiny()
    generator = torch.Generator().manual_seed(0)
    state = {
        key: torch.randn(value.shape, generator=generator)
        for key, value in module.state_dict().items()
        if key not in drop
    }
    state.update(extra or {})
    if dtype is not None:
        state = {key: value.to(dtype) for key, value in state.items()}
    path = tmp_path / "model.safetensors"
    save_file(state, str(path))
    return path, state


def test_strict_load_copies_every_tensor(tmp_path):
    path, state = _checkpoint(tmp_path)
    model = Tiny()
    load_checkpoint(model, path)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, state[key])


def test_one_error_lists_missing_unexpected_and_shape_mismatches(tmp_path):
    path, _ = _checkpoint(
        tmp_path, Tiny(width=6), drop=("head.bias",), extra={"extra.weight": torch.zeros(3)}
    )
    with pytest.raises(WeightsError) as error:
        load_checkpoint(Tiny(width=8), path)
    message = str(error.value)
    assert "1 missing: head.bias" in message
    assert "1 unexpected: extra.weight" in message
    assert "proj.weight (checkpoint (6, 4), model (8, 4))" in message
    assert "official files" in message


def test_skip_keys_keep_initial_values_and_must_exist(tmp_path):
    path, _ = _checkpoint(tmp_path, drop=("scale",))
    model = Tiny()
    load_checkpoint(model, path, skip_keys=["scale"])
    torch.testing.assert_close(model.scale, torch.ones(2))
    with pytest.raises(WeightsError, match="skip_keys not in the model: nope"):
        load_checkpoint(Tiny(), path, skip_keys=["scale", "nope"])


def test_dtype_on_load_and_module_dtype_kept(tmp_path):
    path, state = _checkpoint(tmp_path, dtype=torch.bfloat16)
    assert read_header(path)["proj.weight"].dtype == "BF16"
    as_half = load_safetensors(path, dtype=torch.float16)
    assert all(value.dtype == torch.float16 for value in as_half.values())
    model = Tiny()  # float32 module, bfloat16 file
    load_checkpoint(model, path)
    assert model.proj.weight.dtype == torch.float32
    torch.testing.assert_close(model.proj.weight, state["proj.weight"].float())
    only = load_safetensors(path, keys=["head.bias"])
    assert list(only) == ["head.bias"]
    with pytest.raises(WeightsError, match="does not hold nope"):
        load_safetensors(path, keys=["nope"])


def test_broken_files_are_named(tmp_path):
    with pytest.raises(WeightsError, match="checkpoint not found"):
        read_header(tmp_path / "absent.safetensors")
    pickle = tmp_path / "model.bin"
    pickle.write_bytes(b"\x80\x04\x95" + b"\x00" * 64)
    with pytest.raises(WeightsError, match="not a safetensors file"):
        read_header(pickle)
    path, _ = _checkpoint(tmp_path)
    path.write_bytes(path.read_bytes()[:-16])
    with pytest.raises(WeightsError, match="truncated"):
        load_checkpoint(Tiny(), path)


def test_header_of_an_official_layout_fixture(testdata_images):
    fixture = (
        testdata_images.parents[1]
        / "fixtures"
        / "triposplat"
        / "gaussian_decoder"
        / "weights.safetensors"
    )
    tensors = read_header(fixture)
    assert tensors and all(info.dtype == "F32" for info in tensors.values())
    loaded = load_safetensors(fixture)
    assert {key: tuple(value.shape) for key, value in loaded.items()} == {
        key: info.shape for key, info in tensors.items()
    }


def test_load_into_refuses_a_plain_dict_of_wrong_keys():
    with pytest.raises(WeightsError, match="Tiny"):
        load_into(Tiny(), {"proj.weight": torch.zeros(8, 4)}, source="state dict")


def test_streamed_reads_equal_the_reference_reader_for_every_dtype(tmp_path):
    from safetensors.torch import load_file, save_file

    from genesis3d.weights.loading import load_safetensors

    generator = torch.Generator().manual_seed(3)
    state = {
        "half": torch.randn(5, 7, generator=generator).half(),
        "bf16": torch.randn(3, 2, 4, generator=generator).bfloat16(),
        "f32": torch.randn(11, generator=generator),
        "f64": torch.randn(2, 2, generator=generator, dtype=torch.float64),
        "index": torch.arange(12).reshape(3, 4),
        "small": torch.arange(6, dtype=torch.int32),
        "flags": torch.tensor([True, False, True]),
        "bytes": torch.arange(9, dtype=torch.uint8),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 4),
    }
    path = tmp_path / "mixed.safetensors"
    save_file(state, str(path))
    reference = load_file(str(path))
    read = load_safetensors(path)
    assert set(read) == set(reference)
    for key, value in reference.items():
        assert read[key].dtype == value.dtype and read[key].shape == value.shape, key
        assert torch.equal(read[key], value), key
    cast = load_safetensors(path, dtype=torch.float32, keys=["half", "index", "bf16"])
    assert list(cast) == ["half", "index", "bf16"]
    assert cast["half"].dtype == torch.float32 and cast["index"].dtype == torch.int64
    assert torch.equal(cast["bf16"], reference["bf16"].float())


def test_a_tensor_whose_bytes_do_not_fit_its_shape_is_named(tmp_path):
    import json
    import struct

    from genesis3d.errors import WeightsError
    from genesis3d.weights.loading import load_safetensors

    header = {"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 12]}}
    text = json.dumps(header).encode()
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"\0" * 12)
    with pytest.raises(WeightsError, match="w has 12 bytes for shape"):
        load_safetensors(path)
