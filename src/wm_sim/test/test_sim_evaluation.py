
import pytest

from wm_common.geometry import Pose2D
from wm_sim.evaluation import clearance, collision
from wm_sim.world import Box, World


def _world():
    return World([Box(5.0, 0.0, 1.0, 1.0, 0.0, 1.0, "b")], (-10, -10, 10, 10))


def test_collision_uses_footprint_radius():
    w = _world()
    assert not collision(w, Pose2D(3.0, 0.0, 0.0), 0.4)      # gap 1.5 - 0.4
    assert collision(w, Pose2D(4.2, 0.0, 0.0), 0.4)          # 0.3 from the face
    assert collision(w, Pose2D(5.0, 0.0, 0.0), 0.4)          # inside
    assert clearance(w, Pose2D(3.0, 0.0, 0.0), 0.4) == pytest.approx(1.1)
