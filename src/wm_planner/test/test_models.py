import numpy as np
import pytest

from wm_planner.models import Goal, OptimizerSettings, PlanResult
from wm_world_model.state import RobotLimits, RobotState


def test_defaults():
    lim = RobotLimits()
    assert (lim.v_max, lim.v_min, lim.w_max, lim.a_max, lim.alpha_max) == (0.8, -0.2, 1.2, 1.0, 2.5)
    s = OptimizerSettings()
    assert (s.num_samples, s.horizon, s.dt, s.temperature) == (512, 10, 0.1, 0.3)
    assert (s.noise_sigma_v, s.noise_sigma_w, s.iterations, s.time_budget_ms, s.seed) == \
        (0.3, 0.6, 1, 20.0, None)
    g = Goal(1.0, 2.0, 0.5)
    assert (g.xy_tolerance, g.yaw_tolerance) == (0.25, 0.5)


@pytest.mark.parametrize("cls", [RobotLimits, OptimizerSettings, RobotState, Goal, PlanResult])
def test_from_dict_rejects_unknown_keys(cls):
    with pytest.raises(ValueError, match="unknown"):
        cls.from_dict({"definitely_not_a_field": 1})


def test_from_dict_coerces_yaml_types():
    lim = RobotLimits.from_dict({"v_max": 1, "w_max": np.float32(2.0)})
    assert isinstance(lim.v_max, float) and lim.v_max == 1.0
    s = OptimizerSettings.from_dict({"num_samples": 256.0, "seed": 3})
    assert s.num_samples == 256 and isinstance(s.num_samples, int) and s.seed == 3
    with pytest.raises(TypeError):
        OptimizerSettings.from_dict({"num_samples": 2.5})
    assert RobotState.from_dict({"x": 1, "v": 0.5}) == RobotState(1.0, 0.0, 0.0, 0.5, 0.0)


def test_validation():
    with pytest.raises(ValueError):
        RobotLimits(v_min=0.1)
    with pytest.raises(ValueError):
        OptimizerSettings(temperature=0.0)
    with pytest.raises(ValueError):
        Goal(float("nan"), 0.0, 0.0)


def test_plan_result_shapes_and_command():
    r = PlanResult(controls=np.zeros((10, 2)), trajectory=np.zeros((11, 3)), status="ok")
    assert r.command == (0.0, 0.0) and r.ok
    assert PlanResult().command == (0.0, 0.0)
    with pytest.raises(ValueError):
        PlanResult(status="bogus")
