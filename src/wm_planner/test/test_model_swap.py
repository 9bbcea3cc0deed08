"""Swapping the world model: the probe refuses a model that is broken everywhere, and a
swapped-in model whose predictions keep being refused is rolled back by itself."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from wm_planner.configure import planner_params
from wm_planner.model_swap import NEEDS_MPPI, ModelSwap, load_candidate, probe
from wm_world_model.artifact import load_artifact, save_artifact
from wm_world_model.motion_model import KinematicMotionModel, LearnedMotionModel
from wm_world_model.state import RobotState

SHIPPED = (Path(__file__).resolve().parents[2] / "wm_world_model" / "models"
           / "worldmodel-1.0.0")


def variant(tmp_path, version, v_abs_max=None):
    """A properly saved (checksummed) artifact of the shipped model, optionally declaring
    another speed limit (a model made for a slower robot)."""
    model, _ = load_artifact(str(SHIPPED))
    if v_abs_max is not None:
        model.config.v_abs_max = v_abs_max
    return save_artifact(model, str(tmp_path), version, onnx=False)


def test_probe_accepts_the_shipped_model_and_refuses_a_wild_one(tmp_path):
    good = LearnedMotionModel(str(SHIPPED), 0.1)
    assert probe(good, 0.1) is None
    assert good.failures == 0 and good.payload_kg is None   # payload restored
    assert probe(KinematicMotionModel(), 0.1) is None
    # the network is bounded by construction (tanh residual, clamped velocities), so what the
    # probe catches is a model whose limits do not fit this robot: made for 0.1 m/s, asked
    # to predict from the 0.7 m/s this robot drives
    slow = LearnedMotionModel(variant(tmp_path, "9.9.9", v_abs_max=0.1), 0.1)
    why = probe(slow, 0.1)
    assert why is not None and why.startswith("probe: "), why


def test_rollback_when_the_new_model_keeps_being_refused(tmp_path):
    old = LearnedMotionModel(str(SHIPPED), 0.1)
    new = LearnedMotionModel(variant(tmp_path, "1.0.1"), 0.1)
    swap = ModelSwap(old, rollback_failures=3, rollback_window=30.0)
    swap.swap(new, now=100.0)
    assert swap.current is new and swap.previous is old and swap.check(101.0) is None
    # real refusals: a state far beyond the model's limits makes it predict motion faster
    # than it may (each refused batch is planned on kinematics by the model itself)
    controls = np.zeros((10, 2))
    for _ in range(3):
        new.rollout(RobotState(0.0, 0.0, 0.0, 40.0, 0.0), controls, 0.1)
    assert new.failures >= 3
    why = swap.check(102.0)
    assert why is not None and "rolled back to 1.0.0" in why and "1.0.1" in why
    assert swap.current is old and swap.previous is None
    assert swap.check(103.0) is None


def test_a_model_that_proved_itself_is_kept(tmp_path):
    old = KinematicMotionModel()
    new = LearnedMotionModel(variant(tmp_path, "1.0.2"), 0.1)
    swap = ModelSwap(old, rollback_failures=1, rollback_window=10.0)
    swap.swap(new, now=0.0)
    assert swap.check(11.0) is None          # past the window without refusals
    new.rollout(RobotState(0.0, 0.0, 0.0, 40.0, 0.0), np.zeros((10, 2)), 0.1)
    assert swap.check(12.0) is None and swap.current is new
    with pytest.raises(ValueError):
        ModelSwap(old, rollback_failures=0)


def test_a_candidate_is_loaded_with_the_payload_and_probed_or_refused(tmp_path):
    p = planner_params({"world_model_artifact": ""})
    model, why = load_candidate(p, str(SHIPPED), 80.0)
    assert why == "" and model.version == "1.0.0" and model.payload_kg == 80.0
    assert load_candidate(dict(p, solver="nmpc"), str(SHIPPED), None) == (None, NEEDS_MPPI)
    assert load_candidate(p, "", None) == (None, "refused: no artifact given")
    model, why = load_candidate(p, str(tmp_path / "missing"), None)
    assert model is None and why.startswith("refused: ")
    slow = variant(tmp_path, "9.9.9", v_abs_max=0.1)
    model, why = load_candidate(p, slow, None)
    assert model is None and why.startswith("refused: probe: "), why


def test_fallbacks_count_the_refusals_of_the_model_in_use(tmp_path):
    old = KinematicMotionModel()
    swap = ModelSwap(old, rollback_failures=3, rollback_window=30.0)
    assert swap.versions() == (ModelSwap.version(old), "")
    new = LearnedMotionModel(variant(tmp_path, "1.0.3"), 0.1)
    new.rollout(RobotState(0.0, 0.0, 0.0, 40.0, 0.0), np.zeros((10, 2)), 0.1)
    swap.swap(new, now=0.0)                      # refusals before the swap do not count
    assert swap.versions() == ("1.0.3", ModelSwap.version(old))
    assert swap.fallbacks(new) == 0
    for _ in range(2):
        new.rollout(RobotState(0.0, 0.0, 0.0, 40.0, 0.0), np.zeros((10, 2)), 0.1)
    assert swap.fallbacks(new) == new.failures - 1 >= 2
    assert swap.fallbacks(new) == 0              # counted once
