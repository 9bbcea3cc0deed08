"""The retraining loop end to end, minus the robot: transitions the deployed model gets wrong
(simulated with a payload beyond its trained range, selected and written by the monitor's own
SegmentSelector and TransitionLog to MCAP) -> `python -m wm_monitor.finetune` -> a new
versioned, checksummed artifact with its metrics against the previous one, which the
planner's swap probe accepts."""
from __future__ import annotations

import json
import subprocess
import sys

from rosutil import REPO

from wm_monitor.transitions import read_segments
from wm_planner.model_swap import probe
from wm_world_model.artifact import load_artifact
from wm_world_model.motion_model import LearnedMotionModel


def test_finetune_from_logged_transitions_makes_the_next_version(tmp_path):
    transitions, out, bags = tmp_path / "transitions", tmp_path / "models", tmp_path / "bags"
    r = subprocess.run(   # the simulator is a tool beside the stack: it records, finetune reads
        [sys.executable, "-m", "wm_sim.training_data", "finetune", "--out", str(bags)],
        capture_output=True, text=True, timeout=600, cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]
    r = subprocess.run(
        [sys.executable, "-m", "wm_monitor.finetune", "--artifact", "worldmodel-1.0.0",
         "--transitions", str(transitions), "--out", str(out), "--simulated-bags", str(bags)],
        capture_output=True, text=True, timeout=600, cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]
    segments = read_segments(str(transitions))
    assert len(segments) >= 50
    assert all(s["payload"] == 250.0 and len(s["states"]) <= 21 for s in segments)
    # the monitor selected them: every segment ends on a step above its threshold
    assert all(s["error"][-1] > 0.01 for s in segments)

    result = json.loads(r.stdout)
    path = result["path"]
    model, meta = load_artifact(path)          # schema, checksums of every file
    assert meta["version"] == "1.0.1" and meta["parent"] == "1.0.0"
    ft = meta["metrics"]["finetune"]
    assert ft["parent"] == "1.0.0" and ft["segments"] > 40 and ft["val_windows"] > 100
    before, after = ft["val_previous"], ft["val_new"]
    # measured: mean 1 s error on the validation segments 14.4 cm -> 9.6 cm (deterministic:
    # seeded simulation, one training thread); never worse by construction (best epoch)
    assert after["rollout_pos_cm_mean"] < 0.9 * before["rollout_pos_cm_mean"], ft
    # the planner would take it
    assert probe(LearnedMotionModel(path, 0.1), 0.1) is None

    # no transitions and no --simulated-bags: a clear error, nothing written
    r = subprocess.run(
        [sys.executable, "-m", "wm_monitor.finetune", "--artifact", "worldmodel-1.0.0",
         "--transitions", str(tmp_path / "none"), "--out", str(tmp_path / "none_out")],
        capture_output=True, text=True, timeout=120, cwd=REPO)
    assert r.returncode == 2 and "no transitions" in r.stderr
    assert not (tmp_path / "none_out").exists()
