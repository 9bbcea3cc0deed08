"""Driving data for the world model: rosbag2/MCAP bags -> trajectories -> H-step windows.

Each bag directory (one per episode, as written by `wm_sim.datagen` or by `ros2 bag record` on a
robot, see README "What a fleet must record") is read with `wm_world_model.recording.read_bag`. Per
robot, the data is resampled at the command times (the planner's 0.1 s zero-order hold):

    state_k  = [x, y, yaw] of the *label* pose at t_k, [v, w] of wheel odometry's twist at t_k
    action_k = the command published at t_k (held until t_k + dt)
    payload  = the payload topic's value (kg) at t_k

Labels (honest ones): wheel odometry cannot see wheel slip, the very thing the residual exists to
learn, so the pose labels are never raw wheel odometry: `label_source = "truth"` uses the
simulator's ground truth, `"localization"` the robot's localization (or a fused estimate) in the
map frame. The velocities in the state *are* wheel odometry's, because that is what the planner
feeds the model on the robot: training sees what the robot will see.

A trajectory ends at a gap in the commands, at a reset (collision) in simulation, or where the
payload changes; `CONTACT_MARGIN` seconds before a reset are dropped (contact dynamics are not
what the planner should learn from). Splits are by trajectory, never by sample: whole episodes
go to train / val / test, and every trajectory whose payload is in `heldout_payloads` goes to the
"unseen payload" test set (never to train or val).
Plain Python + numpy (+ rosbags through wm_world_model.recording); Python 3.8.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np

from wm_world_model.recording import read_bag

CONTACT_MARGIN = 0.3     # s dropped before a reset (the contact that caused it)
TIME_TOLERANCE = 0.02    # s: command spacing that still counts as "every dt"
LABEL_SOURCES = ("truth", "localization")


class DataError(ValueError):
    """A bag or a data set that cannot be used for training, with the reason."""


@dataclass
class Trajectory:
    """One uninterrupted stretch of driving of one robot at one payload, at the control rate."""

    name: str            # "<episode dir>/<robot>/<piece>"
    episode: str         # episode dir name: the unit of the train/val/test split
    robot: str
    payload: float       # kg
    t: np.ndarray        # (N,) s
    state: np.ndarray    # (N, 5) [x, y, yaw (unwrapped), v, w]
    action: np.ndarray   # (N, 2) [v_cmd, w_cmd]

    def __len__(self) -> int:
        return int(self.t.shape[0])


@dataclass
class Windows:
    """Every (H+1)-state window of a set of trajectories, ready for batching."""

    states: np.ndarray    # (M, H+1, 5)
    actions: np.ndarray   # (M, H, 2)
    payload: np.ndarray   # (M,) kg
    trajectory: np.ndarray  # (M,) index into the trajectory list it came from

    def __len__(self) -> int:
        return int(self.states.shape[0])


def _interp_angle(t: np.ndarray, tq: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    return np.interp(tq, t, np.unwrap(yaw))


def _pieces(mask: np.ndarray) -> List[slice]:
    """Maximal runs of True in a boolean array, as slices."""
    out = []
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
        out.append(slice(int(a), int(b)))
    return out


def robot_trajectories(d: Mapping[str, np.ndarray], episode: str, robot: str, dt: float,
                       label_source: str = "truth", min_length: int = 2) -> List[Trajectory]:
    """Trajectories of one robot of one bag (`d` = read_bag(path)[robot])."""
    if label_source not in LABEL_SOURCES:
        raise DataError("label_source must be one of %s, got %r" % (LABEL_SOURCES,
                                                                    label_source))
    t_cmd = np.asarray(d["t_cmd"], dtype=np.float64)
    if t_cmd.size < min_length:
        return []
    prefix = "truth" if label_source == "truth" else "loc"
    t_lab = np.asarray(d["t_truth" if label_source == "truth" else "t_loc"])
    if t_lab.size < 2:
        raise DataError("%s/%s: no %s labels recorded (label_source=%r)"
                        % (episode, robot, prefix, label_source))
    if d["t_odom"].size < 2:
        raise DataError("%s/%s: no wheel odometry recorded" % (episode, robot))
    # Only command instants covered by both the labels and the odometry.
    lo = max(t_lab[0], d["t_odom"][0])
    hi = min(t_lab[-1], d["t_odom"][-1])
    ok = (t_cmd >= lo) & (t_cmd <= hi)
    # Resets: drop the contact before one, and cut there (a new odom frame starts).
    seg_cmd = np.searchsorted(d["reset_t"], t_cmd - 1e-9, side="right")
    for r in d["reset_t"]:
        ok &= ~((t_cmd > r - CONTACT_MARGIN) & (t_cmd <= r))
    if d["t_payload"].size:
        idx = np.clip(np.searchsorted(d["t_payload"], t_cmd, side="right") - 1, 0, None)
        payload = d["payload"][idx]
    else:
        payload = np.full(t_cmd.shape, np.nan)   # unknown: the model's "payload unknown" mode
    # Interpolate within each segment only: across a reset the robot was teleported (and its
    # odometry restarted), so a blend of the poses on both sides is meaningless.
    state = np.full((t_cmd.size, 5), np.nan)
    seg_lab = np.searchsorted(d["reset_t"], t_lab - 1e-9, side="right")
    seg_odom = np.searchsorted(d["reset_t"], d["t_odom"] - 1e-9, side="right")
    for seg in np.unique(seg_cmd):
        rows = seg_cmd == seg
        lab = seg_lab == seg
        odo = seg_odom == seg
        if lab.sum() < 2 or odo.sum() < 2:
            continue   # left NaN: dropped below
        tq, tl, to = t_cmd[rows], t_lab[lab], d["t_odom"][odo]
        inside = (tq >= max(tl[0], to[0])) & (tq <= min(tl[-1], to[-1]))
        block = np.stack([np.interp(tq, tl, d[prefix + "_x"][lab]),
                          np.interp(tq, tl, d[prefix + "_y"][lab]),
                          _interp_angle(tl, tq, d[prefix + "_yaw"][lab]),
                          np.interp(tq, to, d["odom_v"][odo]),
                          np.interp(tq, to, d["odom_w"][odo])], axis=1)
        block[~inside] = np.nan
        state[rows] = block
    action = np.stack([d["cmd_v"], d["cmd_w"]], axis=1)
    ok &= np.all(np.isfinite(state), axis=1) & np.all(np.isfinite(action), axis=1)
    # A transition k -> k+1 is usable when both ends are, they are dt apart, in one segment
    # (no reset between) and at one payload.
    same_payload = (payload[:-1] == payload[1:]) | (np.isnan(payload[:-1])
                                                    & np.isnan(payload[1:]))
    link = ok[:-1] & ok[1:] & (np.abs(np.diff(t_cmd) - dt) <= TIME_TOLERANCE) \
        & (seg_cmd[:-1] == seg_cmd[1:]) & same_payload
    out = []
    for piece in _pieces(link):
        sl = slice(piece.start, piece.stop + 1)   # links k..k' connect states k..k'+1
        if sl.stop - sl.start < min_length:
            continue
        out.append(Trajectory(
            name="%s/%s/%d" % (episode, robot, len(out)), episode=episode, robot=robot,
            payload=float(payload[sl.start]), t=t_cmd[sl].copy(), state=state[sl].copy(),
            action=action[sl].copy()))
    return out


def bag_dirs(roots: Iterable[str]) -> List[str]:
    """Every rosbag2 directory (one with metadata.yaml) at or under each root, sorted."""
    found = []
    for root in roots:
        if not os.path.isdir(root):
            raise DataError("no data directory %r (record it: `python -m wm_sim.training_data "
                            "train CONFIG`, `make train`, or see README)" % root)
        for dirpath, _dirs, files in os.walk(root):
            if "metadata.yaml" in files:
                found.append(dirpath)
    return sorted(found)


def load_trajectories(roots: Sequence[str], dt: float = 0.1, label_source: str = "truth",
                      min_length: int = 11) -> List[Trajectory]:
    """All trajectories of every bag under `roots` (episode name = path relative to root)."""
    out: List[Trajectory] = []
    for root in roots:
        for path in bag_dirs([root]):
            episode = os.path.join(os.path.basename(os.path.normpath(root)),
                                   os.path.relpath(path, root))
            for robot, d in sorted(read_bag(path).items()):
                out += robot_trajectories(d, episode, robot, dt, label_source, min_length)
    if not out:
        raise DataError("no usable trajectories under %s" % list(roots))
    return out


def windows(trajs: Sequence[Trajectory], horizon: int, stride: int = 1) -> Windows:
    """All (horizon+1)-state windows, every `stride` steps, of each trajectory."""
    s, a, p, ti = [], [], [], []
    for i, tr in enumerate(trajs):
        n = len(tr) - horizon
        if n <= 0:
            continue
        starts = np.arange(0, n, stride)
        idx = starts[:, None] + np.arange(horizon + 1)[None, :]
        s.append(tr.state[idx])
        a.append(tr.action[idx[:, :-1]])
        p.append(np.full(len(starts), tr.payload))
        ti.append(np.full(len(starts), i))
    if not s:
        return Windows(np.zeros((0, horizon + 1, 5)), np.zeros((0, horizon, 2)),
                       np.zeros(0), np.zeros(0, dtype=np.int64))
    return Windows(np.concatenate(s), np.concatenate(a), np.concatenate(p),
                   np.concatenate(ti).astype(np.int64))


def split(trajs: Sequence[Trajectory], heldout_payloads: Sequence[float], val: float,
          test: float, seed: int) -> Dict[str, List[Trajectory]]:
    """Split by episode into train / val / test, plus "unseen_payload" (held-out masses).

    The episode order is a seeded permutation of the sorted episode names, so the split does
    not depend on the order the files were listed in.
    """
    held = set(float(p) for p in heldout_payloads)
    out: Dict[str, List[Trajectory]] = {"train": [], "val": [], "test": [],
                                        "unseen_payload": []}
    seen = [t for t in trajs if t.payload not in held]
    out["unseen_payload"] = [t for t in trajs if t.payload in held]
    episodes = sorted(set(t.episode for t in seen))
    order = [episodes[i] for i in np.random.default_rng(seed).permutation(len(episodes))]
    n_val = int(round(val * len(order)))
    n_test = int(round(test * len(order)))
    part = {e: "val" for e in order[:n_val]}
    part.update({e: "test" for e in order[n_val:n_val + n_test]})
    for t in seen:
        out[part.get(t.episode, "train")].append(t)
    return out


def fingerprint(trajs: Sequence[Trajectory], label_source: str) -> str:
    """sha256 of the data as the model sees it (names, payloads, states, actions)."""
    h = hashlib.sha256(("labels=%s;" % label_source).encode())
    for t in sorted(trajs, key=lambda t: t.name):
        h.update(("%s;%r;" % (t.name, t.payload)).encode())
        h.update(np.ascontiguousarray(t.state, dtype="<f8").tobytes())
        h.update(np.ascontiguousarray(t.action, dtype="<f8").tobytes())
    return h.hexdigest()


def summary(parts: Mapping[str, Sequence[Trajectory]], dt: float) -> Dict[str, Dict]:
    """Per split: episodes, trajectories, hours of driving, payloads seen."""
    out = {}
    for name, trs in parts.items():
        out[name] = {"episodes": len(set(t.episode for t in trs)), "trajectories": len(trs),
                     "steps": int(sum(len(t) for t in trs)),
                     "minutes": round(sum(len(t) for t in trs) * dt / 60.0, 1),
                     "payloads": sorted(set(float(t.payload) for t in trs))}
    return out


def require(parts: Mapping[str, Sequence[Trajectory]], names: Optional[Sequence[str]] = None
            ) -> None:
    for name in names or ("train", "val"):
        if not parts.get(name):
            raise DataError("the %r split is empty: record more episodes or change the split"
                            % name)
