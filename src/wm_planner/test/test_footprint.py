"""Footprint circles: a long, narrow robot covered by circles along its length clears a gap
that its circumscribed circle cannot, and still collides where its body would."""
from __future__ import annotations

import numpy as np
from planner_world import BoxWorld

from wm_planner.critic_data import CriticData
from wm_planner.critics import ObstacleCritic
from wm_planner.models import Goal
from wm_world_model.state import RobotLimits, RobotState

# A 0.7 x 0.55 m body: three r=0.33 circles along x cover it; the circumscribed circle
# would be r=0.45.
BODY = np.array([[0.18, 0.0, 0.33], [0.0, 0.0, 0.33], [-0.18, 0.0, 0.33]])


def data_for(traj, esdf, footprint, radius):
    traj = np.asarray(traj, dtype=np.float64)[None]
    k, n = traj.shape[0], traj.shape[1] - 1
    return CriticData(state=RobotState(*traj[0, 0], 0.0, 0.0), goal=Goal(5.0, 0.0),
                      controls=np.zeros((k, n, 2)), trajectories=traj, dt=0.1,
                      limits=RobotLimits(), robot_radius=radius, esdf=esdf,
                      footprint=footprint)


def gap_esdf(width):
    # two walls leaving a gap of `width` around y = 0, between x = 1 and x = 2
    half = width / 2.0
    return BoxWorld([(1.0, 2.0, half, 3.0), (1.0, 2.0, -3.0, -half)]).window(0.0, 0.0)


def straight(y=0.0, yaw=0.0):
    xs = np.linspace(0.0, 3.0, 11)
    return np.stack([xs, np.full_like(xs, y), np.full_like(xs, yaw)], axis=1)


def test_circles_pass_a_gap_the_circumscribed_circle_cannot():
    esdf = gap_esdf(0.9)  # 0.9 m gap: fits 0.66 m of circles, not a 0.9 m disc
    critic = ObstacleCritic(collision_cost=1e4, inflation_radius=0.1)
    body = data_for(straight(), esdf, BODY, 0.33)
    critic.score(body)
    assert not body.in_collision[0]
    disc = data_for(straight(), esdf, None, 0.45)
    critic.score(disc)
    assert disc.in_collision[0]


def test_circles_rotate_with_the_robot():
    # driving sideways through the gap puts the 0.7 m length across it: contact
    esdf = gap_esdf(0.8)
    critic = ObstacleCritic(collision_cost=1e4, inflation_radius=0.1)
    along = data_for(straight(yaw=0.0), esdf, BODY, 0.33)
    across = data_for(straight(yaw=np.pi / 2), esdf, BODY, 0.33)
    critic.score(along)
    critic.score(across)
    assert not along.in_collision[0] and across.in_collision[0]
