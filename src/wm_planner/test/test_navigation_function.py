import numpy as np

from wm_common.grid import Grid2D
from wm_planner.navigation_function import cost_to_go
from planner_world import BoxWorld, signed_distance


def _open_grid():
    return Grid2D(-8.0, -8.0, 0.1, np.full((160, 160), 5.0), outside=5.0)


def test_increases_away_from_goal_in_open_space():
    ctg = cost_to_go(_open_grid(), (1.0, 1.0), 0.3, 0.3)
    pts = np.array([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0], [5.0, 1.0], [7.0, 1.0]])
    vals = ctg.sample(pts)
    assert np.all(np.diff(vals) > 0)
    # 8-connected geodesic is within ~8% of Euclidean in open space.
    eu = np.hypot(pts[:, 0] - 1.0, pts[:, 1] - 1.0)
    assert np.all(np.abs(vals[1:] - eu[1:]) <= 0.09 * eu[1:] + 0.1)


def test_routes_around_a_wall():
    # Wall x in [0, 0.4], y in [-3, 3]; goal on one side, query point right behind it.
    world = BoxWorld([(0.0, 0.4, -3.0, 3.0)])
    esdf = world.window(0.0, 0.0)
    ctg = cost_to_go(esdf, (2.0, 0.0), 0.3, 0.3)
    behind = np.array([[-1.0, 0.0]])
    v = float(ctg.sample(behind)[0])
    assert v > 3.0 + 1.0          # Euclidean is 3 m; the detour is ~2 x 3 m longer
    assert v < 20.0               # but still reachable, not the "unreachable" value
    # Going around the top of the wall is cheaper than staying behind its middle.
    assert ctg.sample(np.array([[-1.0, 3.8]]))[0] < v


def test_unreachable_cells_are_large_and_finite():
    occ = np.zeros((160, 160), dtype=bool)
    occ[60:100, 60] = occ[60:100, 100] = occ[60, 60:101] = occ[100, 60:101] = True  # closed room
    esdf = Grid2D(-8.0, -8.0, 0.1, signed_distance(occ), outside=8.0)
    ctg = cost_to_go(esdf, (5.0, 5.0), 0.3, 0.3)
    assert np.all(np.isfinite(ctg.data))
    inside_room = float(ctg.sample(np.array([[0.0, 0.0]]))[0])
    reachable = float(ctg.sample(np.array([[-7.0, -7.0]]))[0])
    assert inside_room > reachable
    # Obstacle cells get the large value too.
    assert float(ctg.sample(np.array([[-2.0, -1.95]]))[0]) > reachable


def test_goal_outside_grid_seeds_the_border():
    ctg = cost_to_go(_open_grid(), (30.0, 0.0), 0.3, 0.3)
    vals = ctg.sample(np.array([[7.5, 0.0], [0.0, 0.0], [-7.5, 0.0]]))
    assert vals[0] < vals[1] < vals[2]
    # The border cell on the goal side carries its Euclidean distance.
    assert abs(vals[0] - 22.5) < 0.2


def test_goal_inside_obstacle_still_guides():
    world = BoxWorld([(2.0, 3.0, -0.5, 0.5)])
    ctg = cost_to_go(world.window(0.0, 0.0), (2.5, 0.0), 0.3, 0.3)
    vals = ctg.sample(np.array([[1.2, 0.0], [0.0, 0.0], [-2.0, 0.0]]))
    assert vals[0] < vals[1] < vals[2]


def test_nan_cells_are_not_traversable():
    data = np.full((50, 50), 5.0)
    data[:, 25] = np.nan
    ctg = cost_to_go(Grid2D(0.0, 0.0, 0.1, data, outside=5.0), (4.0, 2.5), 0.3, 0.3)
    assert np.all(np.isfinite(ctg.data))
    assert ctg.sample(np.array([[1.0, 2.5]]))[0] > ctg.sample(np.array([[3.0, 2.5]]))[0] + 3.0
