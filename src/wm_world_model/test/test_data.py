"""Driving data -> trajectories -> windows -> splits, on synthetic read_bag()-style dicts: a
robot driving an arc, truth and odometry at 50 Hz, commands and localization at 10 Hz."""
from __future__ import annotations

import math
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import pytest

from wm_world_model.data import (CONTACT_MARGIN, DataError, Trajectory, fingerprint,
                                 robot_trajectories, split, windows)

DT = 0.1
V, W = 0.6, 0.3              # the arc: 2 m radius
LOC_BIAS = (0.3, -0.2)       # localization's offset from the truth, to tell the two apart
START = (1.0, 2.0, 0.5)


def _arc(t: np.ndarray, t0: float, pose0: Tuple[float, float, float]) -> np.ndarray:
    """(N, 3) [x, y, yaw (unwrapped)] of the arc started at pose0 at time t0."""
    yaw = pose0[2] + W * (t - t0)
    r = V / W
    return np.stack([pose0[0] + r * (np.sin(yaw) - math.sin(pose0[2])),
                     pose0[1] - r * (np.cos(yaw) - math.cos(pose0[2])), yaw], axis=1)


def _odom_v(t):
    return V + 0.05 * np.sin(3.0 * t)


def _odom_w(t):
    return W + 0.02 * np.cos(2.0 * t)


def truth_pose(t: np.ndarray, resets: Sequence[float] = ()) -> np.ndarray:
    """The true pose; after each reset the robot is put at a new pose far away (the contact
    sample at the reset instant still belongs to the old segment, as in read_bag)."""
    t = np.asarray(t, dtype=np.float64)
    seg = np.searchsorted(np.asarray(resets, dtype=np.float64), t - 1e-9, side="right")
    out = _arc(t, 0.0, START)
    for k, r in enumerate(resets, start=1):
        sel = seg == k
        out[sel] = _arc(t[sel], r, (START[0] + 40.0 * k, START[1] - 25.0 * k, -1.0 * k))
    return out


def make_bag(duration: float = 20.0, cmd_offset: float = 0.0, resets: Sequence[float] = (),
             payload: Optional[Dict[float, float]] = None,
             drop_cmd: Tuple[float, float] = (0.0, 0.0), loc: bool = True,
             payload_topic: bool = True) -> Dict[str, np.ndarray]:
    """A read_bag()-style dict of one robot. `payload`: {from time: kg} (default 0 kg),
    `drop_cmd`: [a, b) with no commands."""
    t50 = np.round(np.arange(int(round(duration / 0.02)) + 1) * 0.02, 9)
    pose = truth_pose(t50, resets)
    wrap = np.arctan2(np.sin(pose[:, 2]), np.cos(pose[:, 2]))
    d: Dict[str, np.ndarray] = {
        "t_odom": t50.copy(), "odom_x": pose[:, 0] * 0.9, "odom_y": pose[:, 1] * 0.9,
        "odom_yaw": wrap.copy(), "odom_v": _odom_v(t50), "odom_w": _odom_w(t50),
        "t_truth": t50.copy(), "truth_x": pose[:, 0], "truth_y": pose[:, 1], "truth_yaw": wrap,
        "truth_v": np.full_like(t50, V), "truth_w": np.full_like(t50, W),
        "truth_vy": np.zeros_like(t50)}
    # Localization at 10 Hz, half a period off the commands.
    t10 = np.round(np.arange(int(round(duration / DT))) * DT + 0.05, 9)
    lp = truth_pose(t10, resets)
    d.update(t_loc=t10 if loc else np.zeros(0), loc_x=lp[:, 0] + LOC_BIAS[0] if loc else
             np.zeros(0), loc_y=lp[:, 1] + LOC_BIAS[1] if loc else np.zeros(0),
             loc_yaw=np.arctan2(np.sin(lp[:, 2]), np.cos(lp[:, 2])) if loc else np.zeros(0))
    t_cmd = np.round(np.arange(int(round(duration / DT))) * DT + cmd_offset, 9)
    t_cmd = t_cmd[~((t_cmd >= drop_cmd[0]) & (t_cmd < drop_cmd[1]))]
    d.update(t_cmd=t_cmd, cmd_v=0.7 + 0.1 * np.sin(t_cmd), cmd_w=0.3 * np.cos(0.2 * t_cmd))
    t_pay = np.arange(int(duration)) * 1.0 if payload_topic else np.zeros(0)
    changes = sorted((payload or {0.0: 0.0}).items())
    kg = np.zeros_like(t_pay)
    for t0, m in changes:
        kg[t_pay >= t0] = m
    d.update(t_payload=t_pay, payload=kg)
    d["t"] = d["t_truth"]
    d["reset_t"] = np.asarray(resets, dtype=np.float64)
    d["segment"] = np.searchsorted(d["reset_t"], d["t"] - 1e-9, side="right").astype(np.int64)
    return d


def _trajs(d, **kw):
    return robot_trajectories(d, "ep0", "robot_0", DT, **kw)


def test_states_at_command_times_are_the_interpolated_truth():
    # Commands 7 ms after the 50 Hz samples, as on a robot whose clocks are not aligned.
    d = make_bag(cmd_offset=0.007)
    (tr,) = _trajs(d)
    n = d["t_cmd"].size
    assert len(tr) == n and tr.payload == 0.0 and tr.robot == "robot_0"
    np.testing.assert_array_equal(tr.t, d["t_cmd"])
    np.testing.assert_allclose(tr.state[:, 0], np.interp(tr.t, d["t_truth"], d["truth_x"]),
                               atol=1e-12)
    np.testing.assert_allclose(tr.state[:, 1], np.interp(tr.t, d["t_truth"], d["truth_y"]),
                               atol=1e-12)
    # Against the analytic arc: the heading is unwrapped (it turns 6 rad, past +-pi).
    exact = truth_pose(tr.t)
    np.testing.assert_allclose(tr.state[:, :2], exact[:, :2], atol=1e-4)
    np.testing.assert_allclose(tr.state[:, 2], exact[:, 2], atol=1e-6)
    assert np.ptp(tr.state[:, 2]) > 2 * math.pi - 1.0
    # Velocities are wheel odometry's at the command times, actions the commands.
    np.testing.assert_allclose(tr.state[:, 3], _odom_v(tr.t), atol=1e-4)
    np.testing.assert_allclose(tr.state[:, 4], _odom_w(tr.t), atol=1e-4)
    np.testing.assert_array_equal(tr.action, np.stack([d["cmd_v"], d["cmd_w"]], axis=1))


def test_reset_cuts_and_drops_the_contact_margin():
    r = 10.04
    d = make_bag(resets=[r])
    before, after = _trajs(d)
    assert before.t[-1] <= r - CONTACT_MARGIN + 1e-9
    assert before.t[-1] > r - CONTACT_MARGIN - DT - 1e-9     # only the margin is dropped
    assert before.t[0] == d["t_cmd"][0]
    assert after.t[0] > r and after.t[0] < r + DT + 1e-9
    assert after.t[-1] == d["t_cmd"][-1]
    for tr in (before, after):
        exact = truth_pose(tr.t, [r])
        np.testing.assert_allclose(tr.state[:, :2], exact[:, :2], atol=1e-4)
        # Unwrapped along the trajectory; the same heading as the truth up to 2 pi.
        assert np.all(np.abs(np.diff(tr.state[:, 2])) < 0.1)
        dyaw = tr.state[:, 2] - exact[:, 2]
        np.testing.assert_allclose(np.arctan2(np.sin(dyaw), np.cos(dyaw)), 0.0, atol=1e-6)
    assert before.name != after.name


def test_no_interpolation_across_a_reset_with_unaligned_stamps():
    # The first command after the reset falls between the contact sample (old pose) and the
    # first sample of the new segment: its label must not be a blend of the two poses.
    r = 10.1
    d = make_bag(cmd_offset=0.007, resets=[r])
    trajs = _trajs(d)
    assert len(trajs) == 2
    for tr in trajs:
        assert not np.any((tr.t > r - CONTACT_MARGIN) & (tr.t <= r))
        err = np.hypot(*(tr.state[:, :2] - truth_pose(tr.t, [r])[:, :2]).T)
        assert err.max() < 0.01, "label %.2f m off the true pose at t=%.3f" % (
            err.max(), tr.t[int(np.argmax(err))])


def test_a_gap_in_the_commands_cuts():
    d = make_bag(drop_cmd=(8.0, 8.55))
    a, b = _trajs(d)
    assert a.t[-1] == pytest.approx(7.9) and b.t[0] == pytest.approx(8.6)
    assert len(a) + len(b) == d["t_cmd"].size


def test_small_command_jitter_does_not_cut():
    d = make_bag()
    d["t_cmd"] = d["t_cmd"].copy()
    d["t_cmd"][50] += 0.015
    assert len(_trajs(d)) == 1


def test_a_payload_change_cuts():
    d = make_bag(payload={0.0: 0.0, 12.0: 40.0})
    a, b = _trajs(d)
    assert (a.payload, b.payload) == (0.0, 40.0)
    assert a.t[-1] == pytest.approx(11.9) and b.t[0] == pytest.approx(12.0)


def test_localization_labels_use_loc():
    d = make_bag(cmd_offset=0.007)
    (tr,) = _trajs(d, label_source="localization")
    np.testing.assert_allclose(tr.state[:, 0], np.interp(tr.t, d["t_loc"], d["loc_x"]),
                               atol=1e-12)
    # Within the span of the 10 Hz localization; offset from the truth by its bias.
    assert tr.t[0] >= d["t_loc"][0] and tr.t[-1] <= d["t_loc"][-1]
    exact = truth_pose(tr.t)
    np.testing.assert_allclose(tr.state[:, 0] - exact[:, 0], LOC_BIAS[0], atol=3e-3)
    np.testing.assert_allclose(tr.state[:, 1] - exact[:, 1], LOC_BIAS[1], atol=3e-3)
    # Velocities still from wheel odometry.
    np.testing.assert_allclose(tr.state[:, 3], _odom_v(tr.t), atol=1e-4)


def test_a_missing_label_source_is_an_error():
    d = make_bag(loc=False)
    with pytest.raises(DataError, match="no loc labels"):
        _trajs(d, label_source="localization")
    assert len(_trajs(d, label_source="truth")) == 1
    with pytest.raises(DataError, match="label_source"):
        _trajs(d, label_source="odom")


def test_a_missing_payload_topic_is_not_silently_dropped():
    # README: the payload topic is part of what a fleet records. A bag without it must
    # either be refused with the reason (DataError) or yield its trajectories; returning
    # nothing without a word loses the data silently.
    d = make_bag(payload_topic=False)
    try:
        trajs = _trajs(d)
    except DataError:
        return
    assert trajs, "a bag without a payload topic silently yields no trajectories"


def _traj(name, episode, n, payload=0.0, seed=0):
    rng = np.random.default_rng(seed)
    return Trajectory(name=name, episode=episode, robot="robot_0", payload=payload,
                      t=np.arange(n) * DT, state=rng.normal(size=(n, 5)),
                      action=rng.normal(size=(n, 2)))


def test_windows_shapes_and_contents():
    trs = [_traj("a", "e0", 15, 10.0, 1), _traj("b", "e0", 12, 20.0, 2),
           _traj("c", "e1", 10, 30.0, 3)]
    w = windows(trs, horizon=10)
    assert w.states.shape == (5 + 2, 11, 5) and w.actions.shape == (7, 10, 2) and len(w) == 7
    np.testing.assert_array_equal(w.trajectory, [0] * 5 + [1] * 2)
    np.testing.assert_array_equal(w.payload, [10.0] * 5 + [20.0] * 2)
    for i, (ti, k) in enumerate([(0, k) for k in range(5)] + [(1, 0), (1, 1)]):
        np.testing.assert_array_equal(w.states[i], trs[ti].state[k:k + 11])
        np.testing.assert_array_equal(w.actions[i], trs[ti].action[k:k + 10])
    w2 = windows(trs, horizon=10, stride=2)
    assert len(w2) == 3 + 1
    np.testing.assert_array_equal(w2.states[1], trs[0].state[2:13])
    empty = windows(trs[2:], horizon=10)
    assert empty.states.shape == (0, 11, 5) and empty.actions.shape == (0, 10, 2)


def _dataset():
    trs = []
    for e in range(12):
        for r in range(2):
            for piece in range(2):
                payload = (0.0, 50.0, 75.0, 150.0)[(e + r) % 4]
                trs.append(_traj("ep%02d/robot_%d/%d" % (e, r, piece), "ep%02d" % e, 12,
                                 payload, seed=e * 10 + r * 2 + piece))
    return trs


def _names(parts):
    return {k: sorted(t.name for t in v) for k, v in parts.items()}


def test_split_by_episode_and_heldout_payload():
    trs = _dataset()
    parts = split(trs, heldout_payloads=[75], val=0.2, test=0.2, seed=3)
    assert sum(len(v) for v in parts.values()) == len(trs)
    assert sorted(n for v in _names(parts).values() for n in v) == sorted(t.name for t in trs)
    for name in ("train", "val", "test"):
        assert parts[name], name
        assert all(t.payload != 75.0 for t in parts[name])
    assert parts["unseen_payload"] and all(t.payload == 75.0 for t in parts["unseen_payload"])
    # An episode lives in exactly one of train / val / test.
    owner = {}
    for name in ("train", "val", "test"):
        for t in parts[name]:
            assert owner.setdefault(t.episode, name) == name, t.episode
    # Independent of the order the files were listed in.
    for seed in range(3):
        shuffled = [trs[i] for i in np.random.default_rng(seed).permutation(len(trs))]
        assert _names(split(shuffled, [75.0], 0.2, 0.2, 3)) == _names(parts)
    # ... but not of the seed.
    assert any(_names(split(trs, [75.0], 0.2, 0.2, s)) != _names(parts) for s in range(4, 8))


def test_fingerprint_tracks_every_value():
    trs = _dataset()[:6]
    fp = fingerprint(trs, "truth")
    assert len(fp) == 64
    assert fingerprint(list(reversed(trs)), "truth") == fp
    assert fingerprint(trs, "localization") != fp
    changed = [_traj(t.name, t.episode, len(t), t.payload) for t in trs]
    for a, b in zip(changed, trs):
        a.state, a.action = b.state.copy(), b.action.copy()
    assert fingerprint(changed, "truth") == fp
    changed[3].state[5, 2] += 1e-9
    assert fingerprint(changed, "truth") != fp
    changed[3].state[5, 2] -= 1e-9
    changed[3].state = trs[3].state.copy()
    changed[4].action[0, 1] = -changed[4].action[0, 1]
    assert fingerprint(changed, "truth") != fp
    changed[4].action = trs[4].action.copy()
    changed[1].payload = 51.0
    assert fingerprint(changed, "truth") != fp
