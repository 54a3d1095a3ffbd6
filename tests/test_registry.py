import pytest

from genesis3d.errors import UnknownModelError, WeightsError
from genesis3d.registry import (
    FAMILIES,
    availability,
    default_family_name,
    get_family,
    resolve_weights,
)


def test_table_has_the_families_with_licences():
    assert {"inflate", "triposplat", "trellis2", "triposg"} <= set(FAMILIES)
    for family in FAMILIES.values():
        assert family.license == "MIT"
        assert family.outputs[0] == family.task
        assert ":" in family.pipeline


def test_unknown_model_names_the_choices():
    with pytest.raises(UnknownModelError) as error:
        get_family("trellis3")
    assert "inflate" in str(error.value) and "genesis3d models" in str(error.value)
    assert get_family(" Inflate ").name == "inflate"


def test_inflate_is_available_and_the_default_without_weights():
    assert availability(FAMILIES["inflate"]).available
    assert default_family_name() == "inflate"


def test_missing_weights_folder_gives_reason_and_fix(tmp_path):
    family = FAMILIES["trellis2"]
    status = availability(family, tmp_path)
    assert not status.available
    # a family whose pipeline is not shipped yet says so; one that is shipped names the missing files
    assert "not part of this version" in status.reason or "pipeline.json" in status.reason


def test_resolve_weights_raises_with_the_reason(tmp_path):
    family = FAMILIES["triposg"]
    with pytest.raises(WeightsError):
        resolve_weights(family, tmp_path)
    assert resolve_weights(FAMILIES["inflate"], None) is None


def test_cached_weights_resolve_to_the_snapshot_root(tmp_path, monkeypatch):
    import huggingface_hub.constants

    from genesis3d.registry import _cached_snapshot

    family = FAMILIES["triposplat"]
    snapshot = tmp_path / "snapshots" / "abc123"
    for name in family.weight_files:
        (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
        (snapshot / name).write_bytes(b"")
    # a real cache lookup, pointed at a cache folder laid out as huggingface_hub writes it
    repo = tmp_path / "cache" / "models--VAST-AI--TripoSplat"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots").symlink_to(tmp_path / "snapshots")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    assert _cached_snapshot(family) == repo / "snapshots" / "abc123"
    (snapshot / family.weight_files[1]).unlink()
    assert _cached_snapshot(family) is None
