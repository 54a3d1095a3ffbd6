"""TripoSplat end to end on a tiny checkpoint in the official layout, on the CPU."""

import json
import shutil

import numpy as np
import pytest

from genesis3d.cli.main import main as cli_main
from genesis3d.errors import ConfigError, WeightsError
from genesis3d.io import load
from genesis3d.pipelines.triposplat import (
    TripoSplatParams,
    TripoSplatPipeline,
    prepare_picture,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def picture(testdata_images):
    return sorted(testdata_images.glob("*.webp"))[0]


def _run_cli(args, capsys):
    with pytest.raises(SystemExit) as stop:
        cli_main(args)
    return stop.value.code, capsys.readouterr()


def test_generate_cli_writes_every_splat_format(tiny_triposplat, picture, tmp_path, capsys):
    out = tmp_path / "out"
    code, _ = _run_cli(
        ["generate", str(picture), "--model", "triposplat", "--weights", str(tiny_triposplat.parent),
         "--gaussians", "32768", "--steps", "2", "--seed", "7", "-f", "ply,splat,spz,glb", "-o", str(out),
         "--device", "cpu", "--json"],
        capsys,
    )  # fmt: skip
    assert code in (0, None)
    files = sorted(p.name for p in out.iterdir())
    assert files == [f"{picture.stem}.{ext}" for ext in ("glb", "ply", "splat", "spz")]
    splats = load(out / f"{picture.stem}.ply")
    assert len(splats.means) == 32768
    assert np.isfinite(splats.means).all() and np.isfinite(splats.scales).all()
    np.testing.assert_allclose(np.linalg.norm(splats.rotations, axis=1), 1.0, atol=1e-5)
    assert ((splats.opacities >= 0) & (splats.opacities <= 1)).all()
    assert len(load(out / f"{picture.stem}.splat").means) == 32768
    assert len(load(out / f"{picture.stem}.spz").means) == 32768
    in_gltf = load(out / f"{picture.stem}.glb")
    np.testing.assert_allclose(in_gltf.means, splats.means, atol=1e-6)
    np.testing.assert_allclose(in_gltf.opacities, splats.opacities, atol=1e-6)


def test_same_seed_same_splats_other_seed_other_splats(tiny_triposplat, picture):
    pipeline = TripoSplatPipeline.from_pretrained(tiny_triposplat, device="cpu")
    first = pipeline(picture, seed=3, gaussians=32768, steps=2).splats
    again = pipeline(picture, seed=3, gaussians=32768, steps=2).splats
    other = pipeline(picture, seed=4, gaussians=32768, steps=2).splats
    for name in ("means", "scales", "rotations", "opacities", "sh0"):
        assert np.array_equal(getattr(first, name), getattr(again, name)), name
    assert not np.allclose(first.means, other.means)
    # Centred, about a metre across, in the world frame.
    assert np.abs(first.means).max() < 1.0


def test_offload_gives_the_same_splats(tiny_triposplat, picture):
    resident = TripoSplatPipeline.from_pretrained(tiny_triposplat, device="cpu")
    staged = TripoSplatPipeline.from_pretrained(tiny_triposplat, device="cpu", offload="model")
    assert staged.store.resident == {}
    a = resident(picture, seed=5, gaussians=32768, steps=1).splats
    b = staged(picture, seed=5, gaussians=32768, steps=1).splats
    assert np.array_equal(a.means, b.means)


def test_offload_frees_a_component_even_where_the_module_is_still_referenced(tiny_triposplat):
    staged = TripoSplatPipeline.from_pretrained(tiny_triposplat, device="cpu", offload="model")
    with staged.store.use("flux2_vae") as vae:
        assert not any(t.is_meta for t in vae.state_dict().values())
    # ``vae`` outlives the block, its weights do not.
    assert all(t.is_meta for t in vae.state_dict().values())
    assert staged.store.resident == {}
    with staged.store.use("flux2_vae") as again:  # the next stage loads it afresh
        assert again is not vae and not any(t.is_meta for t in again.state_dict().values())


def test_parameters_are_validated():
    with pytest.raises(ConfigError, match="multiple of 32"):
        TripoSplatParams.parse({"gaussians": 40001})
    with pytest.raises(ConfigError, match="no parameter 'resolution'"):
        TripoSplatParams.parse({"resolution": 3})
    assert TripoSplatParams.parse({"cfg": "2.5", "steps": "10"}).guidance_scale == 2.5


def test_picture_without_alpha_needs_birefnet_or_a_background_choice(
    tiny_triposplat, testdata_images
):
    photo = next(testdata_images.glob("*_rgb_white.png"))
    pipeline = TripoSplatPipeline.from_pretrained(tiny_triposplat, device="cpu")
    with pytest.raises((ConfigError, WeightsError), match="--bg auto"):
        pipeline(photo, gaussians=32768, steps=1)
    splats = pipeline(photo, background="auto", gaussians=32768, steps=1).splats
    assert len(splats.means) == 32768


def test_picture_without_alpha_is_matted_by_birefnet(
    tiny_triposplat, testdata_images, tmp_path, monkeypatch
):
    from genesis3d.models.triposplat import components
    from tests.support.triposplat import write_tiny_birefnet

    root = tmp_path / "ckpts"
    shutil.copytree(tiny_triposplat, root)
    write_tiny_birefnet(root)
    mattes = []
    original = components.matte

    def recording(model, rgb):
        alpha = original(model, rgb)
        mattes.append((type(model).__name__, rgb, alpha))
        return alpha

    monkeypatch.setattr(components, "matte", recording)
    photo = next(testdata_images.glob("*_rgb_white.png"))
    pipeline = TripoSplatPipeline.from_pretrained(root, device="cpu", offload="model")
    result = pipeline(photo, gaussians=32768, steps=1, seed=3)
    assert len(result.splats.means) == 32768
    # BiRefNet ran on the picture (short side 1024) and its matte framed the condition.
    ((name, rgb, alpha),) = mattes
    assert name == "BiRefNet" and min(rgb.shape[:2]) == 1024 and alpha.shape == rgb.shape[:2]
    expected = prepare_picture(np.dstack([rgb, alpha]))[1]
    np.testing.assert_array_equal(result.condition, expected)


def test_prepare_picture_crops_square_around_the_object():
    rgba = np.zeros((1024, 1536, 4), np.uint8)
    rgba[300:500, 600:1000] = (200, 100, 50, 255)
    prepared, cropped = prepare_picture(rgba)
    assert prepared.shape == (1024, 1024, 3) and cropped.shape == (1024, 1024, 4)
    ys, xs = np.nonzero(cropped[..., 3] > 128)
    # Longest side 400 px (eroded by one) -> 1/1.2 of the canvas, centred.
    assert abs((xs.max() - xs.min()) / 1024 - 1 / 1.2) < 0.01
    assert abs((xs.max() + xs.min()) / 2 - 512) < 3 and abs((ys.max() + ys.min()) / 2 - 512) < 3
    assert prepared[0, 0].tolist() == [0, 0, 0]


def test_weights_found_below_ckpts_and_verified(tiny_triposplat, tmp_path, capsys):
    code, out = _run_cli(
        ["models", "verify", "triposplat", "--weights", str(tiny_triposplat.parent), "--json"],
        capsys,
    )
    assert code in (0, None)
    report = json.loads(out.out)
    assert report["ok"] and {f["component"] for f in report["files"]} >= {"flow_model", "dinov3"}

    broken = tmp_path / "broken"
    shutil.copytree(tiny_triposplat, broken)
    from safetensors.torch import load_file, save_file

    path = broken / "diffusion_models" / "triposplat_fp16.safetensors"
    state = load_file(str(path))
    state.pop("out_layer.bias")
    state["extra.weight"] = state["out_layer.weight"].clone()
    save_file(state, str(path))
    code, out = _run_cli(
        ["models", "verify", "triposplat", "--weights", str(broken), "--json"], capsys
    )
    assert code == 3
    problems = [p for f in json.loads(out.out)["files"] for p in f["problems"]]
    assert any("missing keys" in p and "out_layer.bias" in p for p in problems)
    assert any("unexpected keys" in p and "extra.weight" in p for p in problems)
    with pytest.raises(WeightsError, match="out_layer.bias"):
        TripoSplatPipeline.from_pretrained(broken, device="cpu")


def test_missing_weights_name_the_fix(tmp_path, capsys):
    code, out = _run_cli(
        ["generate", "x.png", "--model", "triposplat", "--weights", str(tmp_path)], capsys
    )
    assert code != 0
    assert "models pull triposplat" in out.err
