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
