"""ReturnMonitor: a LiDAR whose clouds carry no returns is blind after blind_time; an open
space is not; one dark cloud is not; a good cloud ends it."""
from __future__ import annotations

import pytest

from wm_perception.blindness import ReturnMonitor


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
