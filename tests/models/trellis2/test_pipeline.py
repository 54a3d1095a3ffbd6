"""TRELLIS.2 end to end on a tiny folder in the official layout, on the CPU: every pipeline
type from a test picture to a GLB the Khronos validator accepts."""

import json
import shutil

import numpy as np
import pytest
import torch

from genesis3d import api, io
from genesis3d.cli.main import main as cli_main
from genesis3d.errors import ConfigError, InputError, WeightsError
from genesis3d.pipelines.trellis2 import (
    PIPELINE_TYPES,
    Trellis2ImageTo3DPipeline,
    Trellis2Params,
    crop_to_object,
)

pytestmark = pytest.mark.slow

TINY = {"steps": 2, "faces": 3000, "texture_size": 256}


@pytest.fixture(scope="module")
def picture(testdata_images):
    return next(testdata_images.glob("0f168a4b*.webp"))  # RGBA, 1042 px: shrunk to 1024


@pytest.fixture(scope="module")
def pipeline(tiny_trellis2):
    return Trellis2ImageTo3DPipeline.from_pretrained(tiny_trellis2, device="cpu")


@pytest.mark.parametrize("pipeline_type", list(PIPELINE_TYPES))
def test_every_type_makes_a_valid_textured_glb_and_the_same_mesh_per_seed(
    pipeline, picture, pipeline_type, tmp_path, gltf_validator
):
    first = pipeline(picture, seed=3, pipeline_type=pipeline_type, **TINY)
    mesh = first.mesh
    assert 0 < mesh.n_faces <= TINY["faces"]
    assert np.isfinite(mesh.positions).all()
    # The [-0.5, 0.5]^3 cube, turned to Y up: still inside it.
    assert np.abs(mesh.positions).max() <= 0.5 + 1e-4
    material = mesh.material
    assert material.base_color_texture.shape[:2] == (256, 256)
    assert material.metallic_roughness_texture is not None
    assert material.alpha_mode == "OPAQUE" and material.double_sided
    assert mesh.metadata["pipeline_type"] == pipeline_type
    assert mesh.metadata["resolution"] == PIPELINE_TYPES[pipeline_type][1]
    assert set(first.timings) >= {"preprocess", "condition", "structure", "shape", "texture"}
    assert first.condition.shape[2] == 4 and first.condition.shape[0] == first.condition.shape[1]

    glb = api.export(mesh, tmp_path / f"{pipeline_type}.glb")
    assert gltf_validator(glb)["issues"]["numErrors"] == 0
    loaded = io.load(glb)
    assert loaded.n_faces == mesh.n_faces

    again = pipeline(picture, seed=3, pipeline_type=pipeline_type, **TINY).mesh
    assert np.array_equal(mesh.positions, again.positions)
    assert np.array_equal(mesh.faces, again.faces)
    assert np.array_equal(material.base_color_texture, again.material.base_color_texture)


def test_remesh_gives_one_closed_single_sided_shell(pipeline, picture, tmp_path, gltf_validator):
    from genesis3d.geometry.measure import mesh_health

    plain = pipeline(picture, seed=3, pipeline_type="512", **TINY).mesh
    mesh = pipeline(
        picture, seed=3, pipeline_type="512", remesh=True, remesh_resolution=64, **TINY
    ).mesh
    assert not mesh.material.double_sided and plain.material.double_sided
    assert mesh.metadata["remesh"] == 64 and plain.metadata["remesh"] is False
    health = mesh_health(mesh.positions, mesh.faces)
    assert health.watertight and health.edge_manifold and health.components == 1
    assert health.volume > 0  # wound outward
    glb = api.export(mesh, tmp_path / "remeshed.glb")
    assert gltf_validator(glb)["issues"]["numErrors"] == 0


def test_another_seed_gives_another_mesh(pipeline, picture):
    a = pipeline(picture, seed=1, pipeline_type="512", **TINY).mesh
    b = pipeline(picture, seed=2, pipeline_type="512", **TINY).mesh
    assert a.positions.shape != b.positions.shape or not np.allclose(a.positions, b.positions)


def test_the_1536_cascade_lowers_its_resolution_under_the_token_cap(pipeline, picture):
    free = pipeline(picture, seed=3, pipeline_type="1536_cascade", **TINY).mesh
    capped = pipeline(
        picture, seed=3, pipeline_type="1536_cascade", max_tokens=free.metadata["tokens"], **TINY
    ).mesh
    assert free.metadata["resolution"] == 1536
    assert 1024 <= capped.metadata["resolution"] < 1536
    assert (1536 - capped.metadata["resolution"]) % 128 == 0


def test_offload_gives_the_same_mesh(tiny_trellis2, pipeline, picture):
    staged = Trellis2ImageTo3DPipeline.from_pretrained(tiny_trellis2, device="cpu", offload="model")
    assert staged.store.resident == {}
    a = pipeline(picture, seed=5, pipeline_type="1024_cascade", **TINY).mesh
    b = staged(picture, seed=5, pipeline_type="1024_cascade", **TINY).mesh
    assert np.array_equal(a.positions, b.positions)
    assert staged.store.resident == {}


def test_a_picture_without_alpha_goes_through_birefnet(tiny_trellis2, testdata_images, tmp_path):
    from tests.support.triposplat import write_tiny_birefnet

    folder = tmp_path / "trellis2"
    shutil.copytree(tiny_trellis2, folder)
    photo = next(testdata_images.glob("T_rgb_blue.png"))
    bare = Trellis2ImageTo3DPipeline.from_pretrained(folder, device="cpu")
    with pytest.raises(InputError, match="no alpha matte"):
        bare(photo, background="alpha", pipeline_type="512", **TINY)
    write_tiny_birefnet(folder, dtype=torch.float32)
    with torch.no_grad():
        result = bare(photo, pipeline_type="512", **TINY)
    assert result.condition.shape[2] == 4


def test_cli_generate_writes_a_valid_glb(tiny_trellis2, picture, tmp_path, capsys, gltf_validator):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as stop:
        cli_main(
            ["generate", str(picture), "--model", "trellis2", "--weights", str(tiny_trellis2),
             "--resolution", "512", "--steps", "2", "--faces", "2000", "--texture-size", "256",
             "--seed", "7", "-o", str(out), "--device", "cpu", "--json"]
        )  # fmt: skip
    captured = capsys.readouterr()
    assert stop.value.code in (0, None), captured.err
    report = json.loads(captured.out)
    assert report["model"] == "trellis2" and report["failed"] == 0
    glb = out / f"{picture.stem}.glb"
    assert gltf_validator(glb)["issues"]["numErrors"] == 0
    assert 0 < io.load(glb).n_faces <= 2000


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        (["--octree-resolution", "64"], "no parameter 'octree_resolution'"),
        (["--resolution", "768"], "resolution must be 512, 1024 or 1536"),
        (["--texture-size", "300"], "must be a power of two between 256 and 8192"),
    ],
)
def test_cli_rejects_flags_that_do_not_apply(
    tiny_trellis2, picture, tmp_path, capsys, flag, message
):
    with pytest.raises(SystemExit) as stop:
        cli_main(
            ["generate", str(picture), "--model", "trellis2", "--weights", str(tiny_trellis2),
             "-o", str(tmp_path), "--device", "cpu", "--json", *flag]
        )  # fmt: skip
    captured = capsys.readouterr()
    assert stop.value.code == 1
    assert message in captured.out + captured.err


def test_a_missing_network_file_is_named(tiny_trellis2, tmp_path, picture):
    folder = tmp_path / "broken"
    shutil.copytree(tiny_trellis2, folder)
    (folder / "ckpts" / "tex_dec_next_dc_f16c32_fp16.safetensors").unlink()
    report = Trellis2ImageTo3DPipeline.verify(folder)
    assert not report["ok"]
    broken = [entry for entry in report["files"] if entry["problems"]]
    assert [entry["component"] for entry in broken] == ["tex_slat_decoder"]
    with pytest.raises(WeightsError, match="tex_dec_next_dc_f16c32_fp16.safetensors"):
        Trellis2ImageTo3DPipeline.from_pretrained(folder, device="cpu")
    assert Trellis2ImageTo3DPipeline.verify(tiny_trellis2)["ok"]


def test_strict_loading_names_a_foreign_key(tiny_trellis2, tmp_path):
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "extra"
    shutil.copytree(tiny_trellis2, folder)
    path = folder / "ckpts" / "shape_dec_next_dc_f16c32_fp16.safetensors"
    state = load_file(str(path))
    state["blocks.9.stray"] = torch.zeros(2)
    save_file(state, str(path))
    with pytest.raises(WeightsError, match=r"blocks\.9\.stray"):
        Trellis2ImageTo3DPipeline.from_pretrained(folder, device="cpu")


def test_parameters_are_validated():
    assert Trellis2Params.parse({"resolution": "1536"}).pipeline_type == "1536_cascade"
    assert Trellis2Params.parse({"resolution": 1024}).pipeline_type == "1024_cascade"
    assert Trellis2Params().pipeline_type == "1024_cascade"
    with pytest.raises(ConfigError, match="pipeline_type must be one of"):
        Trellis2Params.parse({"pipeline_type": "2048"})
    with pytest.raises(ConfigError, match="no parameter 'gaussians'"):
        Trellis2Params.parse({"gaussians": 32768})
    with pytest.raises(ConfigError, match="steps must be"):
        Trellis2Params.parse({"steps": 0})
    parsed = Trellis2Params.parse({"remesh": "true", "remesh_resolution": "256"})
    assert parsed.remesh is True and parsed.remesh_resolution == 256
    with pytest.raises(ConfigError, match="remesh must be true or false"):
        Trellis2Params.parse({"remesh": "sometimes"})
    with pytest.raises(ConfigError, match="remesh_resolution must be between"):
        Trellis2Params.parse({"remesh_resolution": 32})


def test_crop_is_a_square_around_the_opaque_pixels_premultiplied():
    rgba = np.zeros((100, 120, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[20:41, 30:71, 3] = 255  # 41 x 21 opaque block: box 40 wide
    rgba[50:60, 10:20, 3] = 100  # translucent, below the 204 threshold: not in the box
    crop = crop_to_object(rgba)
    assert crop.shape == (40, 40, 4)
    assert crop[..., 3].max() == 255 and (crop[crop[..., 3] == 0][:, :3] == 0).all()
    half = rgba.copy()
    half[20:41, 30:71, 3] = 230
    assert crop_to_object(half)[20, 20, 0] == int(200 / 255 * 230 / 255 * 255)
    with pytest.raises(InputError, match="no object"):
        crop_to_object(np.zeros((10, 10, 4), np.uint8))


def test_the_official_matte_resamples_with_pil_and_agrees_with_the_tensor_one(tmp_path):
    from genesis3d.models.birefnet import load_birefnet, predict_alpha
    from genesis3d.pipelines.trellis2.params import birefnet_matte
    from tests.support.triposplat import write_tiny_birefnet

    model = load_birefnet(write_tiny_birefnet(tmp_path, dtype=torch.float32))
    ys, xs = np.mgrid[0:70, 0:90]
    rgb = np.stack([xs * 2, ys * 3, (xs + ys)], axis=-1).astype(np.uint8)  # smooth
    matte = birefnet_matte(model, rgb, size=64)
    assert matte.shape == (70, 90) and matte.dtype == np.uint8
    reference = predict_alpha(model, rgb, size=64).astype(np.float64)
    # Same network, other resampling: strongly correlated, not equal.
    assert np.corrcoef(matte.ravel(), reference.ravel())[0, 1] > 0.95


def test_progress_reports_every_stage_and_step(pipeline, picture):
    events = []
    pipeline(picture, seed=3, pipeline_type="1024_cascade", progress=events.append, **TINY)
    totals = {event.stage: event.total for event in events}
    steps = TINY["steps"]
    assert totals["condition"] == 2  # DINOv3 at 512 and 1024 px
    assert totals["structure"] == steps and totals["texture"] == steps
    assert totals["shape"] == 2 * steps  # the cascade's two passes
    shape_steps = [event.step for event in events if event.stage == "shape"]
    assert shape_steps == list(range(2 * steps + 1))
    assert {"decode", "clean", "uv", "bake"} <= set(totals)
