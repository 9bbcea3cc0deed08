import numpy as np
import pytest

from wm_common.geometry import Pose2D
from wm_sim.localization import Localization


def test_rate_and_noise_statistics():
    loc = Localization(rate_hz=10, sigma_xy=0.02, sigma_yaw=0.01, seed=1)
    truth = Pose2D(3.0, 4.0, 3.1)
    out = []
    dt = 0.01
    for k in range(20001):  # 200 s at 100 Hz
        e = loc.update(k * dt, truth)
        if e is not None:
            out.append(e)
    assert len(out) == pytest.approx(2001, abs=1)
    stamps = np.array([e.stamp for e in out])
    assert np.allclose(np.diff(stamps), 0.1, atol=1e-6)
    xy = np.array([[e.pose.x - 3.0, e.pose.y - 4.0] for e in out])
    dyaw = np.array([(e.pose.yaw - 3.1 + np.pi) % (2 * np.pi) - np.pi for e in out])
    assert np.abs(xy.mean(axis=0)).max() < 0.003
    assert xy.std(axis=0) == pytest.approx([0.02, 0.02], rel=0.1)
    assert dyaw.std() == pytest.approx(0.01, rel=0.1)
    cov = np.array(out[0].covariance).reshape(6, 6)
    assert cov[0, 0] == pytest.approx(4e-4) and cov[5, 5] == pytest.approx(1e-4)


def test_seed_reproducible_and_correlated_option():
    a = Localization(seed=7).estimate(0.0, Pose2D(0, 0, 0))
    b = Localization(seed=7).estimate(0.0, Pose2D(0, 0, 0))
    assert a == b
    loc = Localization(seed=3, correlation_time=2.0)
    xs = np.array([loc.update(0.1 * k, Pose2D(0, 0, 0)).pose.x for k in range(2000)])
    # Neighbouring estimates are strongly correlated (exp(-0.1/2) ~ 0.95).
    assert np.corrcoef(xs[:-1], xs[1:])[0, 1] > 0.85


def test_coarse_steps_do_not_burst():
    loc = Localization(rate_hz=10, seed=0)
    assert loc.update(0.0, Pose2D(0, 0, 0)) is not None
    assert loc.update(0.55, Pose2D(0, 0, 0)) is not None   # 5 periods missed: one estimate
    assert loc.update(0.56, Pose2D(0, 0, 0)) is None
    assert loc.update(0.60, Pose2D(0, 0, 0)) is not None
