"""The motion models: the shipped world model as the planner runs it, and its run-time guard."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch

from wm_world_model.kinematics import unicycle_rollout
from wm_world_model.motion_model import KinematicMotionModel, LearnedMotionModel
from wm_world_model.state import RobotState

SHIPPED = os.path.join(os.path.dirname(__file__), "..", "..", "wm_world_model", "models",
                       "worldmodel-1.0.0")


@pytest.fixture(scope="module")
def learned():
    return LearnedMotionModel(SHIPPED, dt=0.1)


def _controls(k=64, h=10, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([rng.uniform(-0.2, 0.8, (k, h)), rng.uniform(-1.2, 1.2, (k, h))], axis=2)


def test_learned_rollout_shape_and_agreement_with_kinematics(learned):
    state = RobotState(x=1.0, y=2.0, yaw=0.4, v=0.5, w=0.0)
    u = np.tile([0.5, 0.0], (10, 1))
    traj = learned.rollout(state, u, 0.1)
    assert traj.shape == (11, 3)
    np.testing.assert_allclose(traj[0], [1.0, 2.0, 0.4], atol=1e-6)
    # Steady straight driving: the model agrees with kinematics to a few centimetres.
    kin = unicycle_rollout(state, u, 0.1)
    assert np.max(np.hypot(*(traj[:, :2] - kin[:, :2]).T)) < 0.05
    batch = learned.rollout(state, _controls(), 0.1)
    assert batch.shape == (64, 11, 3) and np.all(np.isfinite(batch))
    assert learned.failures == 0


def test_far_from_the_origin_is_the_same_prediction(learned):
    # float32 would round odom coordinates of 5 km to millimetres; the model rolls out
    # from the origin and adds the pose back in float64 (exact by SE(2) equivariance).
    u = _controls(8)
    near = learned.rollout(RobotState(x=0.0, y=0.0, yaw=1.0, v=0.3, w=0.2), u, 0.1)
    far = learned.rollout(RobotState(x=5000.0, y=-3000.0, yaw=1.0, v=0.3, w=0.2), u, 0.1)
    np.testing.assert_allclose(far[..., 0] - 5000.0, near[..., 0], atol=1e-9)
    np.testing.assert_allclose(far[..., 1] + 3000.0, near[..., 1], atol=1e-9)


def test_payload_changes_the_prediction(learned):
    state = RobotState(v=0.0, w=0.0)
    u = np.tile([0.8, 1.0], (10, 1))
    learned.set_payload(0.0)
    light = learned.rollout(state, u, 0.1)
    learned.set_payload(150.0)
    heavy = learned.rollout(state, u, 0.1)
    learned.set_payload(None)
    # A heavy robot accelerates more slowly: it has covered less ground after 1 s.
    assert np.hypot(*heavy[-1, :2]) < np.hypot(*light[-1, :2]) - 0.01
    with pytest.raises(ValueError):
        learned.set_payload(float("nan"))


def _broken(model: LearnedMotionModel, how: str) -> LearnedMotionModel:
    from wm_world_model.artifact import load_artifact, to_torchscript

    net, _ = load_artifact(SHIPPED)
    with torch.no_grad():
        if how == "nan":
            net.residual[0].weight[0, 0] = float("nan")
        else:  # a calibration that moves 50x faster than commanded
            net.calibration[0] = 50.0
    model._script = to_torchscript(net)
    return model


@pytest.mark.parametrize("how,reason", [("nan", "non-finite"), ("fast", "speed limit")])
def test_bad_predictions_fall_back_to_kinematics(how, reason):
    model = _broken(LearnedMotionModel(SHIPPED, dt=0.1), how)
    state = RobotState(x=3.0, y=1.0, yaw=0.2, v=0.4, w=0.1)
    u = _controls(16)
    traj = model.rollout(state, u, 0.1)
    np.testing.assert_allclose(traj, KinematicMotionModel().rollout(state, u, 0.1))
    assert model.failures == 1 and reason in model.last_error


def test_batched_predict_flags_only_the_implausible_rows():
    """The service's batched call: a row the model gets wrong is kinematics and untrusted,
    the other rows are the model's."""
    model = _broken(LearnedMotionModel(SHIPPED, dt=0.1), "fast")
    model.predict_on("cpu")
    model._predict_script = model._script
    states = np.array([[0.0, 0.0, 0.0, 0.0, 0.0], [3.0, 1.0, 0.2, 0.4, 0.1]])
    cmds = np.stack([np.zeros((10, 2)), _controls(1)[0]])
    out, trusted = model.predict(states, cmds, [None, 50.0], 0.1)
    assert trusted.tolist() == [True, False] and model.failures == 1
    kin, _ = KinematicMotionModel().predict(states[1:], cmds[1:], [None], 0.1)
    np.testing.assert_allclose(out[1], kin[0])
    assert np.abs(out[0, :, :2]).max() < 0.05      # the standing robot stays (residual drift)


def test_dt_mismatch_and_corrupt_artifact_are_refused(tmp_path):
    from wm_world_model.artifact import ArtifactError

    with pytest.raises(ValueError, match="dt"):
        LearnedMotionModel(SHIPPED, dt=0.05)
    bad = tmp_path / "worldmodel-1.0.0"
    shutil.copytree(SHIPPED, bad)
    data = bytearray((bad / "weights.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bad / "weights.npz").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="checksum"):
        LearnedMotionModel(str(bad), dt=0.1)
