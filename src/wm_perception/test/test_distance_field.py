from __future__ import annotations

import numpy as np
import pytest

from wm_perception.distance_field import signed_distance


def test_single_obstacle_distances_to_cell_edge():
    occ = np.zeros((21, 21), bool)
    occ[10, 10] = True
    d = signed_distance(occ, 0.1, 5.0)
    assert d.dtype == np.float32 and d.shape == (21, 21)
    assert d[10, 10] == pytest.approx(-0.05)
    assert d[10, 11] == pytest.approx(0.05)
    assert d[10, 15] == pytest.approx(0.45)
    assert d[13, 14] == pytest.approx(0.5 - 0.05)
    np.testing.assert_allclose(d, d[::-1, :])
    np.testing.assert_allclose(d, d[:, ::-1])


def test_inside_is_negative_and_deepest_in_the_middle():
    occ = np.zeros((30, 30), bool)
    occ[5:25, 5:25] = True
    d = signed_distance(occ, 0.05, 1.0)
    assert (d[occ] < 0).all() and (d[~occ] > 0).all()
    assert d[15, 15] == d.min()
    assert d[5, 15] == pytest.approx(-0.025)


def test_clipped_to_max_distance():
    occ = np.zeros((5, 100), bool)
    occ[:, 0] = True
    d = signed_distance(occ, 0.1, 3.0)
    assert d.max() == pytest.approx(3.0)
    assert d[0, 99] == pytest.approx(3.0)
    assert d[0, 20] == pytest.approx(1.95)


def test_empty_and_full_grids():
    assert (signed_distance(np.zeros((4, 4), bool), 0.1, 2.0) == 2.0).all()
    assert (signed_distance(np.ones((4, 4), bool), 0.1, 2.0) == -2.0).all()


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        signed_distance(np.zeros(4, bool), 0.1, 1.0)
    with pytest.raises(ValueError):
        signed_distance(np.zeros((4, 4), bool), 0.0, 1.0)
