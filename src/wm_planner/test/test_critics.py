"""Each critic ranks a good trajectory below a bad one; registry and parameter handling."""
import numpy as np
import pytest

from wm_common.grid import Grid2D
from wm_planner.critic_data import CriticData
from wm_planner.critics import (CRITIC_REGISTRY, DEFAULT_CRITICS, ControlEffortCritic,
                                Critic, GoalAngleCritic, GoalCritic, ObstacleCritic,
                                PathAngleCritic, PreferForwardCritic, SmoothnessCritic,
                                make_critics)
from wm_planner.models import Goal
from wm_planner.navigation_function import cost_to_go
from wm_world_model.kinematics import unicycle_rollout
from wm_world_model.state import RobotLimits, RobotState
from planner_world import BoxWorld

H, DT = 10, 0.1


def make_data(controls, state=None, goal=None, esdf=None, ctg=None, prev=None):
    state = state or RobotState(0.0, 0.0, 0.0)
    goal = goal or Goal(5.0, 0.0, 0.0)
    controls = np.asarray(controls, dtype=np.float64)
    return CriticData(state=state, goal=goal, controls=controls,
                      trajectories=unicycle_rollout(state, controls, DT),
                      dt=DT, limits=RobotLimits(),
                      robot_radius=0.3, esdf=esdf, cost_to_go=ctg, prev_controls=prev)


def const(*pairs):
    return np.array([np.tile(p, (H, 1)) for p in pairs])


def ranks_good_first(critic, data):
    c = critic.score(data)
    assert c.shape == (data.num_samples,)
    assert np.all(np.isfinite(c))
    assert c[0] < c[1], (critic, c)


def test_goal_critic_euclidean_and_cost_to_go():
    ranks_good_first(GoalCritic(), make_data(const([0.8, 0.0], [-0.2, 0.0])))
    # Goal behind a wall: straight at it is Euclidean-better but geodesically worse
    # than heading for the gap at the wall's end.
    world = BoxWorld([(1.0, 1.4, -4.0, 1.0)])
    esdf = world.window(0.0, 0.0)
    ctg = cost_to_go(esdf, (3.0, 0.0), 0.3, 0.3)
    state = RobotState(0.0, 0.0, 0.0)
    toward_gap = np.tile([0.8, 0.0], (H, 1))
    data = make_data(np.array([toward_gap, toward_gap]), state=RobotState(0.0, 0.0, 1.3),
                     goal=Goal(3.0, 0.0, 0.0), ctg=ctg)
    data_straight = make_data(toward_gap[None], state=state, goal=Goal(3.0, 0.0, 0.0), ctg=ctg)
    assert GoalCritic().score(data)[0] < GoalCritic().score(data_straight)[0]
    assert GoalCritic(weight=1.0).cost(data_straight)[0] > 3.0  # geodesic, not 2.2 m


def test_goal_angle_critic_only_near_goal():
    near = Goal(0.5, 0.0, 1.0)
    ranks_good_first(GoalAngleCritic(), make_data(const([0.0, 1.0], [0.0, -1.0]), goal=near))
    far = make_data(const([0.0, 1.0], [0.0, -1.0]), goal=Goal(5.0, 0.0, 1.0))
    np.testing.assert_array_equal(GoalAngleCritic().score(far), 0.0)
    free_yaw = make_data(const([0.0, 1.0], [0.0, -1.0]),
                         goal=Goal(0.5, 0.0, 1.0, yaw_tolerance=3.2))
    np.testing.assert_array_equal(GoalAngleCritic().score(free_yaw), 0.0)


def test_path_angle_critic_turns_toward_the_route():
    goal_behind = Goal(-5.0, 0.0, 0.0)
    ranks_good_first(PathAngleCritic(), make_data(const([0.0, 1.2], [0.3, 0.0]), goal=goal_behind))
    world = BoxWorld([(1.0, 1.4, -4.0, 1.0)])
    ctg = cost_to_go(world.window(0.0, 0.0), (3.0, 0.0), 0.3, 0.3)
    # Facing +x at a wall: the descent direction is up (+y) toward the gap.
    data = make_data(const([0.0, 1.2], [0.0, -1.2]), goal=Goal(3.0, 0.0, 0.0), ctg=ctg)
    ranks_good_first(PathAngleCritic(), data)


def _wall_esdf():
    return BoxWorld([(1.0, 1.4, -2.0, 2.0)]).window(0.0, 0.0)


def test_obstacle_critic_collision_and_clearance():
    esdf = _wall_esdf()
    critic = ObstacleCritic()
    # Stop short of the wall vs drive into it.
    data = make_data(const([0.3, 0.0], [0.8, 0.0]), state=RobotState(0.2, 0.0, 0.0), esdf=esdf)
    c = critic.score(data)
    assert c[0] < c[1] and c[1] >= critic.collision_cost
    assert data.in_collision.tolist() == [False, True]
    # Both collision-free, one passes closer: the soft term ranks them.
    data = make_data(const([0.5, 0.0], [0.5, 0.0]), esdf=esdf,
                     state=RobotState(-1.5, 0.0, 0.0))
    data.trajectories[1, :, 0] += 1.6   # shift the second one to within the inflation band
    c = critic.score(data)
    assert not data.in_collision.any() and c[0] < c[1]


def test_obstacle_critic_outside_grid_is_free():
    # A grid whose `outside` reads as contact (0.0) must still count as free beyond it.
    esdf = Grid2D(0.0, 0.0, 0.1, np.full((20, 20), 5.0), outside=0.0)
    data = make_data(const([0.8, 0.0]), state=RobotState(10.0, 10.0, 0.0), esdf=esdf)
    assert ObstacleCritic().score(data)[0] == 0.0 and not data.in_collision.any()


def test_effort_smoothness_prefer_forward():
    ranks_good_first(ControlEffortCritic(), make_data(const([0.2, 0.0], [0.8, 1.0])))
    prev = np.tile([0.5, 0.0], (H, 1))
    ranks_good_first(SmoothnessCritic(), make_data(const([0.5, 0.0], [0.6, 0.25]), prev=prev))
    zigzag = np.tile([0.5, 0.0], (H, 1))
    zigzag[::2, 1] = 0.25
    data = make_data(np.array([np.tile([0.5, 0.0], (H, 1)), zigzag]), prev=prev)
    ranks_good_first(SmoothnessCritic(), data)
    ranks_good_first(PreferForwardCritic(), make_data(const([0.3, 0.0], [-0.2, 0.0])))
    # Near the goal, backing up is allowed (overshoot recovery).
    near = make_data(const([0.3, 0.0], [-0.2, 0.0]), goal=Goal(0.2, 0.0, 0.0))
    np.testing.assert_array_equal(PreferForwardCritic().score(near), 0.0)


def test_registry_and_make_critics():
    critics = make_critics()
    assert [c.name for c in critics] == list(DEFAULT_CRITICS)
    assert set(DEFAULT_CRITICS) <= set(CRITIC_REGISTRY)
    built = make_critics({"obstacle": {"collision_cost": 5e3, "weight": 1}, "goal": None})
    assert [type(c) for c in built] == [ObstacleCritic, GoalCritic]
    assert built[0].collision_cost == 5e3 and isinstance(built[0].weight, float)
    with pytest.raises(ValueError, match="unknown critic"):
        make_critics({"no_such_critic": {}})
    with pytest.raises(ValueError, match="unknown parameter"):
        make_critics({"goal": {"wieght": 1.0}})
    with pytest.raises(ValueError):
        GoalCritic(weight=-1.0)
    for cls in CRITIC_REGISTRY.values():
        assert issubclass(cls, Critic) and "weight" in cls.PARAMS and "enabled" in cls.PARAMS


def test_disabled_critic_scores_zero():
    data = make_data(const([0.8, 0.0], [-0.2, 0.0]))
    np.testing.assert_array_equal(GoalCritic(enabled=False).score(data), 0.0)


def test_a_body_already_in_contact_may_move_out_but_not_deeper():
    """The padded footprint 0.02 m into a wall ahead (x = 0.5): every sample 'collides' by
    the plain rule, the stop included, and the robot could never leave. Samples that get it
    out (backing away) are not collisions; driving on into the wall, and standing, are."""
    from wm_common.footprint import Footprint
    from wm_planner.critics import ObstacleCritic

    world = BoxWorld([(0.5, 0.9, -3.0, 3.0)])
    esdf = world.window(0.0, 0.0)
    fp = Footprint.rectangle(1.04, 0.55)                 # front at 0.52: 0.02 m into it
    state = RobotState(0.0, 0.0, 0.0, 0.0, 0.0)
    controls = np.array([[[v, 0.0]] * 10 for v in (-0.2, 0.0, 0.2)], dtype=np.float64)
    traj = unicycle_rollout(state, controls, 0.1)
    data = CriticData(state=state, goal=Goal(3.0, 0.0, 0.0), controls=controls,
                      trajectories=traj, dt=0.1, limits=RobotLimits(), robot_radius=0.3,
                      esdf=esdf, footprint=fp)
    critic = ObstacleCritic(weight=1.0, inflation_radius=0.08)
    critic.score(data)
    assert data.in_collision.tolist() == [False, True, True]   # back out / stand / drive in
