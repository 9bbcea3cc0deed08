"""The MPC's field: never-observed cells near the robot are obstacles, far ones are not."""
from __future__ import annotations

import numpy as np

from wm_common.grid import Grid2D
from wm_planner.unknown_space import unknown_as_obstacles


def test_unknown_cells_within_the_range_become_obstacles():
    data = np.full((40, 40), 2.0, dtype=np.float32)          # 4 x 4 m, all free
    f = Grid2D(-2.0, -2.0, 0.1, data, outside=3.0)
    assert unknown_as_obstacles(f, (0.0, 0.0), 0.75) is f    # no mask: unchanged
    unknown = np.zeros((40, 40), dtype=bool)
    unknown[20:22, 26:28] = True                              # (0.6-0.8, 0-0.2): near
    unknown[0:2, 0:2] = True                                  # (-2, -2): far
    f = Grid2D(-2.0, -2.0, 0.1, data, outside=3.0, unknown=unknown)
    g = unknown_as_obstacles(f, (0.0, 0.0), 0.75)
    near, behind, far = g.sample(np.array([[0.65, 0.05], [0.3, 0.05], [-1.95, -1.95]]))
    assert near < 0.0                                          # inside: an obstacle
    assert 0.2 < behind < 0.35                                 # 0.3 m from its edge
    assert far == 2.0                                          # beyond the range: free
    assert g.unknown is f.unknown
    assert unknown_as_obstacles(f, (0.0, 0.0), 0.0) is f      # 0: unknown is free
