from __future__ import annotations

import math

import numpy as np
import pytest

from wm_common.geometry import Pose2D
from wm_perception.deskew import base_motion, deskew
from wm_perception.pipeline import Perception, PerceptionConfig

SENSOR = (0.3, -0.1, 0.5, 0.4)   # offset and rotated mount: catches frame mix-ups


def _pose_mul(a, b):
    ax, ay, ath = a
    bx, by, bth = b
    return (ax + math.cos(ath) * bx - math.sin(ath) * by,
            ay + math.sin(ath) * bx + math.cos(ath) * by, ath + bth)


def _scan_wall(vx, vy, wz, n=400, sweep=0.1, wall_x=4.0):
    """A wall x = wall_x (y in [-3, 3], z = 0.8) in the frame of the base at the stamp,
    seen point by point by a sensor on a base moving with twist (vx, vy, wz): returns the
    points in the sensor frame at their capture times, their times and the truth (the
    points in the sensor frame at the stamp)."""
    y = np.linspace(-3.0, 3.0, n)
    t = np.linspace(-0.5 * sweep, 0.5 * sweep, n)
    world = np.stack([np.full(n, wall_x), y, np.full(n, 0.8)], axis=1)
    sx, sy, sz, syaw = SENSOR
    meas = np.empty_like(world)
    truth = np.empty_like(world)
    for i in range(n):
        # Integrate the twist finely: an independent check of the closed form.
        pose = (0.0, 0.0, 0.0)
        steps = 50
        dt = t[i] / steps
        for _ in range(steps):
            pose = _pose_mul(pose, (vx * dt, vy * dt, wz * dt))
        for tgt, base in ((meas, pose), (truth, (0.0, 0.0, 0.0))):
            sens = _pose_mul(base, (sx, sy, syaw))
            dx, dy = world[i, 0] - sens[0], world[i, 1] - sens[1]
            c, s = math.cos(sens[2]), math.sin(sens[2])
            tgt[i] = (c * dx + s * dy, -s * dx + c * dy, world[i, 2] - sz)
    return meas, t, truth


@pytest.mark.parametrize("twist", [(1.5, 0.0, 0.0), (1.0, 0.0, 0.8), (0.5, 0.3, -1.2)])
def test_deskew_recovers_the_points_at_the_stamp(twist):
    meas, t, truth = _scan_wall(*twist)
    out = deskew(meas, t, (twist[0], twist[1]), twist[2], SENSOR)
    # The Euler integration of the reference is only accurate to ~1e-4 m.
    np.testing.assert_allclose(out, truth, atol=2e-4)
    assert np.abs(meas - truth).max() > 0.03  # the skew was real


def test_straight_wall_is_straight_after_deskew_and_skewed_before():
    v = 2.0
    meas, t, _ = _scan_wall(v, 0.0, 0.0, sweep=0.1)
    cfg = PerceptionConfig(deskew=True, resolution=0.05)
    base = Pose2D(10.0, -3.0, 0.0)

    def wall_x_spread(out):
        ijk = out.voxels.ijk()
        return ijk[:, 0].max() - ijk[:, 0].min()

    before = Perception(cfg).process(meas, SENSOR, base)  # no time: used as is
    after = Perception(cfg).process(meas, SENSOR, base, t_rel=t, twist=(v, 0.0))
    assert not before.deskewed and after.deskewed
    assert wall_x_spread(before) >= 3    # 0.2 m of skew over 5 cm cells
    assert wall_x_spread(after) == 0     # one column of voxels: straight
    # The raw points, rotated to the base frame: x spread before vs after.
    out = deskew(meas, t, v, 0.0, SENSOR)
    yaw = SENSOR[3]
    xb = lambda p: math.cos(yaw) * p[:, 0] - math.sin(yaw) * p[:, 1]  # noqa: E731
    assert np.ptp(xb(meas)) > 0.19 and np.ptp(xb(out)) < 1e-5


def test_deskew_off_by_default_and_identity_cases():
    meas, t, _ = _scan_wall(1.0, 0.0, 0.5)
    a = Perception().process(meas, SENSOR, Pose2D(0, 0, 0), t_rel=t, twist=(1.0, 0.5))
    assert not a.deskewed
    np.testing.assert_array_equal(deskew(meas, t, 0.0, 0.0, SENSOR), meas)
    np.testing.assert_allclose(deskew(meas, np.zeros(len(t)), 1.0, 0.5, SENSOR), meas,
                               atol=1e-12)
    f32 = deskew(meas.astype(np.float32), t, 1.0, 0.5, SENSOR)
    assert f32.dtype == np.float32
    # Small and zero yaw rates agree (no 0/0 in the closed form).
    for w in (0.0, 1e-12, 1e-7):
        dx, dy, _ = base_motion(np.array([0.1]), 1.0, 0.2, w)
        np.testing.assert_allclose([dx[0], dy[0]], [0.1, 0.02], atol=1e-7)
    with pytest.raises(ValueError):
        deskew(meas, t[:-1], 1.0, 0.0, SENSOR)
    with pytest.raises(ValueError):
        deskew(meas, t, float("nan"), 0.0, SENSOR)
