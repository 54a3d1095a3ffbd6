"""TripoSG end to end on a tiny checkpoint in the official layout, on the CPU."""

import json
import shutil

import numpy as np
import pytest
import torch

from genesis3d import io
from genesis3d.cli.main import main as cli_main
from genesis3d.errors import ConfigError, InputError, WeightsError
from genesis3d.pipelines.triposg import (
    ImageProcessorConfig,
    TripoSGParams,
    TripoSGPipeline,
    alpha_is_valid,
    dinov2_pixels,
    frame_object,
    object_box,
)
from tests.support.triposg import TINY_TOKENS

pytestmark = pytest.mark.slow

TINY = {"steps": 2, "octree_resolution": 32, "tokens": TINY_TOKENS}


@pytest.fixture(scope="module")
def picture(testdata_images):
    return sorted(testdata_images.glob("*.webp"))[0]


@pytest.fixture(scope="module")
def pipeline(tiny_triposg):
    return TripoSGPipeline.from_pretrained(tiny_triposg, device="cpu")


def _run_cli(args, capsys):
    with pytest.raises(SystemExit) as stop:
        cli_main(args)
    return stop.value.code, capsys.readouterr()


def test_generate_cli_writes_a_valid_glb_a_ply_and_an_obj(
    tiny_triposg, picture, tmp_path, capsys, gltf_validator
):
    out = tmp_path / "out"
    code, captured = _run_cli(
        ["generate", str(picture), "--model", "triposg", "--weights", str(tiny_triposg),
         "--steps", "2", "--cfg", "7", "--octree-resolution", "32", "--faces", "600",
         "--seed", "7", "-p", f"tokens={TINY_TOKENS}", "-f", "glb,ply,obj", "-o", str(out),
         "--device", "cpu", "--json"],
        capsys,
    )  # fmt: skip
    assert code in (0, None), captured.err
    report = json.loads(captured.out)
    assert report["model"] == "triposg" and report["failed"] == 0
    glb = out / f"{picture.stem}.glb"
    assert gltf_validator(glb)["issues"]["numErrors"] == 0
    mesh = io.load(glb)
    assert 0 < mesh.n_faces <= 600
    assert np.isfinite(mesh.positions).all()
    assert mesh.material.base_color_texture is None  # untextured, neutral material
    ply = io.load(out / f"{picture.stem}.ply")
    assert ply.n_faces == mesh.n_faces
    obj = io.load(out / f"{picture.stem}.obj")
    assert obj.n_faces == mesh.n_faces and (out / f"{picture.stem}.mtl").is_file()


def test_same_seed_same_mesh_other_seed_other_mesh(pipeline, picture):
    first = pipeline(picture, seed=3, **TINY).mesh
    again = pipeline(picture, seed=3, **TINY).mesh
    other = pipeline(picture, seed=4, **TINY).mesh
    assert np.array_equal(first.positions, again.positions)
    assert np.array_equal(first.faces, again.faces)
    assert first.positions.shape != other.positions.shape or not np.allclose(
        first.positions, other.positions
    )
    # Inside the sampled cube, in the world frame (TripoSG's frame is already Y up, +Z front).
    assert np.abs(first.positions).max() <= 1.005 + 1e-6
    assert first.metadata["model"] == "triposg" and first.metadata["seed"] == 3


def test_the_mesh_is_cleaned_through_the_export_toolkit_unless_asked_not_to(pipeline, picture):
    from genesis3d.geometry.measure import mesh_health

    cleaned = pipeline(picture, seed=3, **TINY).mesh
    raw = pipeline(picture, seed=3, clean=False, **TINY).mesh
    report = cleaned.metadata["clean"]
    assert raw.metadata["clean"] is False
    assert report["faces_in"] == raw.n_faces and report["faces_out"] == cleaned.n_faces
    health = mesh_health(cleaned.positions, cleaned.faces)
    assert health.degenerate_faces == 0


def test_offload_gives_the_same_mesh(tiny_triposg, pipeline, picture):
    staged = TripoSGPipeline.from_pretrained(tiny_triposg, device="cpu", offload="model")
    assert staged.store.resident == {}
    a = pipeline(picture, seed=5, **TINY).mesh
    b = staged(picture, seed=5, **TINY).mesh
    assert np.array_equal(a.positions, b.positions)


def test_picture_without_alpha_needs_birefnet_or_a_background_choice(pipeline, testdata_images):
    photo = next(testdata_images.glob("*_rgb_white.png"))
    with pytest.raises(WeightsError, match="--bg auto"):
        pipeline(photo, **TINY)
    mesh = pipeline(photo, background="auto", **TINY).mesh
    assert mesh.n_faces > 0


def test_parameters_are_validated():
    with pytest.raises(ConfigError, match="octree_resolution must be one of"):
        TripoSGParams.parse({"octree_resolution": 500})
    with pytest.raises(ConfigError, match="no parameter 'gaussians'"):
        TripoSGParams.parse({"gaussians": 32768})
    parsed = TripoSGParams.parse({"cfg": "5", "steps": "20", "faces": -1, "clean": "false"})
    assert parsed.guidance_scale == 5.0 and parsed.steps == 20 and parsed.faces is None
    assert parsed.clean is False and TripoSGParams().clean is True
    with pytest.raises(ConfigError, match="clean must be true or false"):
        TripoSGParams.parse({"clean": "maybe"})
    assert TripoSGParams().extraction_options.octree_depth == 9


def test_framing_pads_a_square_with_a_ten_percent_margin():
    rgb = np.zeros((300, 400, 3), np.uint8)
    alpha = np.zeros((300, 400), np.uint8)
    alpha[100:150, 50:250] = 255  # 200 x 50 object
    assert alpha_is_valid(alpha)
    mask, box = object_box(alpha, hard=False)
    assert box == (50, 100, 250, 150)
    square = frame_object(rgb, mask, box)
    assert square.shape == (240, 240, 3)  # 200 + 2 x 20
    assert (square[:95, :, :] == 255).all() and (square[100:140, 20:220] == 0).all()
    assert not alpha_is_valid(np.full((10, 10), 255, np.uint8))


def test_a_predicted_matte_becomes_a_hard_mask_of_the_largest_object():
    alpha = np.zeros((200, 200), np.uint8)
    alpha[20:120, 30:90] = 230  # the object
    alpha[150:160, 150:160] = 240  # a 100 px speck
    alpha[5:8, 5:8] = 200
    mask, box = object_box(alpha, hard=True)
    assert box == (30, 20, 90, 120)
    assert set(np.unique(mask)) == {0.0, 1.0} and mask[155, 155] == 0
    with pytest.raises(InputError, match="no object"):
        object_box(np.zeros((50, 50), np.uint8), hard=True)


def test_dinov2_matches_transformers_on_the_processed_picture(picture):
    """Our DINOv2 (official key names) against transformers' as an oracle."""
    from transformers import Dinov2Config as HFConfig
    from transformers import Dinov2Model as HFModel

    from genesis3d.models.triposg.dinov2 import Dinov2Config, Dinov2Model

    hf_config = HFConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2)
    reference = HFModel(hf_config).eval()
    generator = torch.Generator().manual_seed(0)
    state = {
        key: torch.randn(value.shape, generator=generator) * 0.2
        for key, value in reference.state_dict().items()
    }
    reference.load_state_dict(state)
    names = {"q_proj": "attention.query", "k_proj": "attention.key", "v_proj": "attention.value", "o_proj": "output.dense"}  # fmt: skip
    ours = Dinov2Model(Dinov2Config.from_config(hf_config.to_dict())).eval()
    renamed = {}
    for key, value in state.items():
        for new, old in names.items():
            key = key.replace(f"attention.{new}", f"attention.{old}")
        renamed[key] = value
    ours.load_state_dict(renamed, strict=True)
    square = np.asarray(
        __import__("PIL.Image", fromlist=["Image"]).open(picture).convert("RGB").resize((300, 300))
    )
    pixels = dinov2_pixels(square, ImageProcessorConfig())
    assert pixels.shape == (1, 3, 224, 224)
    with torch.no_grad():
        expected = reference(pixel_values=pixels).last_hidden_state
        torch.testing.assert_close(ours(pixels), expected, atol=1e-5, rtol=1e-5)
    assert expected.shape == (1, 257, 32)


def test_weights_are_verified_and_loaded_strictly(tiny_triposg, tmp_path, capsys):
    code, out = _run_cli(
        ["models", "verify", "triposg", "--weights", str(tiny_triposg), "--json"], capsys
    )
    assert code in (0, None)
    report = json.loads(out.out)
    assert report["ok"]
    assert {f["component"] for f in report["files"]} >= {"transformer", "vae", "image_encoder"}

    broken = tmp_path / "broken"
    shutil.copytree(tiny_triposg, broken)
    from safetensors.torch import load_file, save_file

    path = broken / "transformer" / "diffusion_pytorch_model.safetensors"
    state = load_file(str(path))
    state.pop("proj_out.bias")
    save_file(state, str(path))
    code, out = _run_cli(
        ["models", "verify", "triposg", "--weights", str(broken), "--json"], capsys
    )
    assert code == 3
    assert any("proj_out.bias" in p for f in json.loads(out.out)["files"] for p in f["problems"])
    with pytest.raises(WeightsError, match="proj_out.bias"):
        TripoSGPipeline.from_pretrained(broken, device="cpu")
