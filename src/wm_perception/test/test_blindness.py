"""ReturnMonitor: a LiDAR whose clouds carry no returns is blind after blind_time; an open
space is not; one dark cloud is not; a good cloud ends it."""
from __future__ import annotations

import numpy as np
import pytest

from wm_perception.blindness import ReturnMonitor, blindness_params, sector_wall


def test_blind_after_blind_time_of_dark_clouds_and_back_at_the_first_good_one():
    m = ReturnMonitor(blind_time=0.3, learn_clouds=5)
    for i in range(10):                       # normal: 60 % of beams return
        assert m.update(0.1 * i, 600, 1000) == (False, "")
    assert m.normal == pytest.approx(0.6)
    t = 1.0
    assert not m.update(t, 0, 1000)[0]        # all zero: dark, not yet blind
    assert not m.update(t + 0.2, 0, 1000)[0]
    blind, why = m.update(t + 0.3, 0, 1000)
    assert blind and "0.0 % valid returns for 0.30 s" in why and "normal 60.0 %" in why
    assert m.update(t + 0.4, 0, 1000)[0]
    assert m.update(t + 0.5, 590, 1000) == (False, "")     # returns came back


def test_an_open_space_is_not_blindness_but_a_covered_sensor_is():
    m = ReturnMonitor(learn_clouds=3)
    for i in range(3):
        m.update(0.1 * i, 600, 1000)
    for i in range(10):                       # a third of the normal returns: open space
        assert not m.update(1.0 + 0.1 * i, 200, 1000)[0]
    for i in range(5):                        # a tenth of normal: covered
        blind, _ = m.update(3.0 + 0.1 * i, 60, 1000)
    assert blind


def test_a_single_dark_cloud_is_noise_and_a_sensor_blind_from_the_start_is_caught():
    m = ReturnMonitor(learn_clouds=3)
    for i in range(3):
        m.update(0.1 * i, 600, 1000)
    assert not m.update(0.5, 0, 1000)[0]
    assert not m.update(0.6, 600, 1000)[0] and m.dark_since is None
    fresh = ReturnMonitor()                   # never saw a return: nothing learned
    assert fresh.normal is None
    assert not fresh.update(0.0, 0, 1000)[0]
    assert fresh.update(0.5, 5, 1000)[0]      # 0.5 % < min_fraction 2 %, for 0.5 s
    assert ReturnMonitor(expected=0.5).threshold() == pytest.approx(0.125)
    with pytest.raises(ValueError):
        ReturnMonitor(min_ratio=0.0)


def _azimuths(n_per_sector, sectors=8):
    """Valid returns' azimuths: n_per_sector[k] of them spread across sector k."""
    width = 2.0 * np.pi / sectors
    return np.concatenate([-np.pi + width * (k + (np.arange(n) + 0.5) / max(n, 1))
                           for k, n in enumerate(n_per_sector)])


def test_a_half_covered_sensor_has_blind_sectors_while_the_whole_cloud_looks_fine():
    m = ReturnMonitor(blind_time=0.3, learn_clouds=3, sectors=8)
    normal = [100] * 8                        # 1000 points declared, 80 % return
    for i in range(3):
        assert m.update(0.1 * i, 800, 1000, _azimuths(normal)) == (False, "")
    assert m.sector_normal() == pytest.approx(np.full(8, 0.8))
    half = [100, 100, 100, 100, 0, 0, 3, 100]  # sectors 4-6 covered (0-0.3 % valid)
    t = 1.0
    for k in range(4):
        blind, _ = m.update(t + 0.1 * k, 503, 1000, _azimuths(half))
        assert not blind                      # 50 % of the points: not blind as a whole
    assert m.blind_sectors == [4, 5, 6]
    assert "+0..+45 deg (0 % valid)" in m.sectors_why()
    m.update(t + 0.5, 800, 1000, _azimuths(normal))
    assert m.blind_sectors == []              # returns back: at once


def test_sectors_outside_the_field_of_view_are_not_monitored():
    m = ReturnMonitor(learn_clouds=2, sectors=8)
    fov = [0, 0, 0, 120, 120, 0, 0, 0]        # a 90 degree sensor looking forward
    for i in range(5):
        m.update(0.1 * i, 240, 300, _azimuths(fov))
    assert m.blind_sectors == []
    for i in range(5):                        # its left half covered
        m.update(1.0 + 0.1 * i, 120, 300, _azimuths([0, 0, 0, 120, 0, 0, 0, 0]))
    assert m.blind_sectors == [4]
    configured = ReturnMonitor(expected=0.8, sectors=8)   # every sector from the start
    for i in range(5):
        configured.update(0.1 * i, 240, 300, _azimuths(fov))
    assert configured.blind_sectors == [0, 1, 2, 5, 6, 7]


def test_sector_wall_encloses_the_blind_sectors_at_the_radius():
    pts = sector_wall([4, 5], 8, 0.9, [0.0, 0.3], 0.05)
    assert pts.shape[1] == 3 and set(np.round(pts[:, 2], 6)) == {0.0, 0.3}
    assert np.allclose(np.hypot(pts[:, 0], pts[:, 1]), 0.9)
    az = np.arctan2(pts[:, 1], pts[:, 0])
    assert az.min() >= -1e-9 and az.max() <= np.pi / 2 + 1e-9   # sectors 4-5: 0..90 deg
    gaps = np.diff(np.sort(az[pts[:, 2] == 0.0])) * 0.9
    assert gaps.max() <= 0.05 + 1e-9
    assert sector_wall([], 8, 0.9, [0.0], 0.05).shape == (0, 3)


def test_blind_time_is_not_one_cloud_late_from_float_stamps():
    m = ReturnMonitor(blind_time=0.3, learn_clouds=1, sectors=8)
    m.update(6.1, 800, 1000)
    assert not m.update(6.2, 0, 1000)[0]
    assert 6.5 - 6.2 < 0.3                     # what the stamps give
    assert m.update(6.5, 0, 1000)[0]           # blind at the cloud 0.3 s on, not 0.4 s


def test_a_monitor_from_node_parameters_walls_and_names_its_dark_sectors():
    """Perception and the collision monitor build their monitors from the same parameter
    list; the wall sits in the height band that counts, the dark intervals in base_link."""
    p = {q.name: q.default for q in blindness_params("the robot is held")}
    p.update(blind_learn_clouds=1, blind_sectors=8)
    m = ReturnMonitor.from_params(p)
    assert (m.sectors, m.blind_time, m.learn_clouds) == (8, 0.3, 1)
    m.update(0.0, 800, 1000, _azimuths([100] * 8))
    for t in (0.1, 0.4):                       # sectors 4-7 (0..180 deg) dark for 0.3 s
        m.update(t, 400, 1000, _azimuths([100] * 4 + [0] * 4))
    assert m.blind_sectors == [4, 5, 6, 7]
    pts = m.wall(0.9, z_min=0.05, z_max=1.8, mount_z=0.4, spacing=0.05)
    assert np.allclose(sorted(set(np.round(pts[:, 2], 6))), [-0.3, 0.175, 0.65])   # 0.1..1.05 m
    assert np.arctan2(pts[:, 1], pts[:, 0]).min() >= -1e-9          # 0..180 deg only
    lo, hi = zip(*m.dark_intervals(yaw=np.pi / 2))                  # mounted facing left
    assert np.allclose(lo, np.pi / 2 + np.array([0.0, 1.0, 2.0, 3.0]) * np.pi / 4)
    assert np.allclose(np.array(hi) - np.array(lo), np.pi / 4)
