""".splat (antimatter15): 32-byte records, visibility order, RDF file frame."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from genesis3d import io
from genesis3d.assets import SH_C0
from genesis3d.errors import FormatError
from genesis3d.io import splat
from tests.support import random_splats, same_rotations


def test_round_trip_within_quantisation(tmp_path):
    splats = random_splats(degree=2)
    path = io.save(splats, tmp_path / "s.splat")
    assert path.stat().st_size == 32 * splats.n_splats
    back = io.load(path)
    order = splat.visibility_order(splats)  # the file holds the records in this order
    np.testing.assert_array_equal(back.means, splats.means[order])
    np.testing.assert_array_equal(back.scales, splats.scales[order])
    step = 0.5 / 255 + 1e-6  # 8-bit colour and opacity
    np.testing.assert_allclose(back.opacities, splats.opacities[order], atol=step)
    np.testing.assert_allclose(back.colors(), splats.colors()[order], atol=step)
    # 8-bit components: each off by at most 1/256, so the rotations agree to about 1e-4.
    assert same_rotations(back.rotations, splats.rotations[order], 2e-3)
    assert back.sh_rest is None  # .splat has no higher bands


def test_records_are_sorted_most_visible_first():
    splats = random_splats(n=200, seed=4)
    back = splat.decode(splat.encode(splats))
    # Match records to splats by their exact float32 positions, then check the weights.
    weight = splats.opacities.astype(np.float64) * np.prod(splats.scales.astype(np.float64), axis=1)
    index = {tuple(mean): i for i, mean in enumerate(splats.means.tolist())}
    in_file = np.array([index[tuple(mean)] for mean in back.means.tolist()])
    assert sorted(in_file.tolist()) == list(range(200))
    assert (np.diff(weight[in_file]) <= 0).all()


def test_decodes_a_hand_built_record_in_the_rdf_frame():
    # One record laid out by hand from the format description.
    record = struct.pack(
        "<3f3f4B4B", 1.0, 2.0, 3.0, 0.5, 0.25, 0.125, 255, 128, 0, 64, 128, 255, 128, 128
    )
    splats = splat.decode(record)
    np.testing.assert_allclose(splats.means, [[1, -2, -3]])  # file y down, z away
    np.testing.assert_allclose(splats.scales, [[0.5, 0.25, 0.125]])
    np.testing.assert_allclose(splats.colors(), [[1.0, 128 / 255, 0.0]], atol=1e-6)
    np.testing.assert_allclose(splats.sh0[0, 0], (1.0 - 0.5) / SH_C0, rtol=1e-6)
    np.testing.assert_allclose(splats.opacities, [64 / 255])
    # Stored (w, x, y, z) = (0, 127/128, 0, 0): a half turn about file x, which the frame
    # flip (itself a half turn about x) turns into no rotation at all.
    assert same_rotations(splats.rotations, np.array([[1.0, 0, 0, 0]]), 1e-6)


def test_written_file_is_in_the_rdf_frame(tmp_path):
    splats = random_splats(n=1)
    splats.means = np.array([[0.0, 1.0, 0.5]], np.float32)
    record = np.frombuffer(splat.encode(splats), splat.RECORD)
    np.testing.assert_array_equal(record["position"], [[0.0, -1.0, -0.5]])


def test_wrong_size_is_a_format_error(tmp_path):
    with pytest.raises(FormatError, match="multiple of 32"):
        splat.decode(bytes(33))
    bad = struct.pack("<3f3f4B4B", 0, 0, 0, -1.0, 1, 1, 0, 0, 0, 0, 128, 128, 128, 128)
    with pytest.raises(FormatError, match="scales"):
        splat.decode(bad)
