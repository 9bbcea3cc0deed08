import math
import os

import numpy as np
import pytest

from wm_common.geometry import Pose2D
from wm_sim.world import Box, World, robot_box, test_scene as make_test_scene, warehouse


def _one_box_world(yaw=0.0):
    return World([Box(0.0, 0.0, 2.0, 1.0, yaw, 1.0, "b")], (-5, -5, 5, 5))


def test_signed_distance_hand_values():
    w = _one_box_world()
    pts = np.array([[3.0, 0.0],     # 2 m right of the +x face
                    [0.0, 2.5],     # 2 m above the +y face
                    [4.0, 4.5],     # corner region: hypot(3, 4) = 5
                    [0.0, 0.0],     # centre: 0.5 deep (nearest face is y)
                    [0.9, 0.0],     # 0.1 inside the +x face
                    [1.0, 0.2]])    # on the +x face
    np.testing.assert_allclose(w.signed_distance(pts), [2.0, 2.0, 5.0, -0.5, -0.1, 0.0],
                               atol=1e-12)


def test_signed_distance_rotated_box_and_shapes():
    w = _one_box_world(yaw=math.pi / 2)  # now 1 m wide in x, 2 m tall in y
    np.testing.assert_allclose(w.signed_distance(np.array([[1.5, 0.0], [0.0, 3.0]])),
                               [1.0, 2.0], atol=1e-12)
    grid = np.zeros((3, 4, 2))
    assert w.signed_distance(grid).shape == (3, 4)
    assert w.signed_distance(np.array([0.0, 0.0])).shape == ()


def test_signed_distance_min_over_boxes_and_extra_boxes():
    w = World([Box(0, 0, 1, 1), Box(4, 0, 1, 1)], (-5, -5, 10, 5))
    assert w.signed_distance(np.array([2.0, 0.0])) == pytest.approx(1.5)
    assert w.signed_distance(np.array([2.4, 0.0])) == pytest.approx(1.1)
    extra = [robot_box(Pose2D(2.0, 0.0, 0.0), 0.4, 0.4)]
    assert w.signed_distance(np.array([2.0, 0.0]), extra) == pytest.approx(-0.2)
    assert np.isinf(World([], (0, 0, 1, 1)).signed_distance(np.array([0.5, 0.5])))


def _read_pgm(path):
    with open(path, "rb") as f:
        data = f.read()
    tokens, pos = [], 0
    while len(tokens) < 4:  # magic, width, height, maxval; skip '#' comments
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        tokens.append(data[pos:end])
        pos = end
    pos += 1  # the single whitespace byte after maxval
    magic, w, h, maxval = tokens[0], int(tokens[1]), int(tokens[2]), int(tokens[3])
    img = np.frombuffer(data[pos:], dtype=np.uint8)
    return magic, maxval, img.reshape(h, w)


def _read_yaml(path):
    out = {}
    with open(path) as f:
        for line in f:
            k, v = line.split(":", 1)
            out[k.strip()] = v.strip()
    return out


def test_map_server_pair(tmp_path):
    w = warehouse("small")
    res = 0.1
    yaml_path, pgm_path = w.write_map_server(str(tmp_path / "wh"), res)
    y = _read_yaml(yaml_path)
    assert set(y) >= {"image", "resolution", "origin", "negate", "occupied_thresh",
                      "free_thresh", "mode"}
    assert y["image"] == "wh.pgm" and os.path.exists(os.path.join(tmp_path, y["image"]))
    assert float(y["resolution"]) == res
    assert [float(v) for v in y["origin"].strip("[]").split(",")] == [0.0, 0.0, 0.0]
    assert y["negate"] == "0" and y["mode"] == "trinary"
    assert float(y["occupied_thresh"]) == 0.65 and float(y["free_thresh"]) == 0.25

    magic, maxval, img = _read_pgm(pgm_path)
    assert magic == b"P5" and maxval == 255
    assert img.shape == (140, 200)
    assert set(np.unique(img)) == {0, 254}
    # Occupied pixels are on (or within half a cell of) boxes; row 0 is the top (max y).
    rows, cols = np.nonzero(img == 0)
    xy = np.stack([(cols + 0.5) * res, 14.0 - (rows + 0.5) * res], axis=1)
    assert np.all(w.signed_distance(xy) <= 0.5 * res + 1e-9)
    # ... and every cell centre inside a shelf is occupied.
    shelf = w.box("shelf_1_0")
    r = int((14.0 - shelf.cy) / res)
    c = int(shelf.cx / res)
    assert img[r, c] == 0
    free = np.nonzero(img == 254)
    xy_free = np.stack([(free[1] + 0.5) * res, 14.0 - (free[0] + 0.5) * res], axis=1)
    assert np.all(w.signed_distance(xy_free) > 0.0)


def test_rasterize_matches_signed_distance():
    w = make_test_scene()
    occ, origin = w.rasterize(0.05)
    assert occ.dtype == np.uint8 and occ.shape == (160, 200)
    assert origin == Pose2D(0.0, 0.0, 0.0)
    b = w.box("block")
    iy, ix = int(b.cy / 0.05), int(b.cx / 0.05)
    assert occ[iy, ix] == 100 and occ[int(2.0 / 0.05), int(2.0 / 0.05)] == 0


def _segment_min_distance(w, a, b, n=400):
    t = np.linspace(0.0, 1.0, n)[:, None]
    pts = np.array([a.x, a.y]) * (1 - t) + np.array([b.x, b.y]) * t
    return w.signed_distance(pts).min()


@pytest.mark.parametrize("name", ["small", "large"])
def test_warehouse_scenarios(name):
    w = warehouse(name)
    xmin, ymin, xmax, ymax = w.bounds
    assert 18 <= xmax - xmin <= 30 and 12 <= ymax - ymin <= 20
    assert len(w.spawns) == 4 and list(w.spawns) == list(w.goals)
    shelves = [b for b in w.boxes if b.name.startswith("shelf")]
    assert len(shelves) >= 6 and all(b.height == 2.0 and b.sy == 0.8 for b in shelves)
    assert any("pack" in b.name for b in w.boxes)
    for rid in w.spawns:
        s, g = w.spawns[rid], w.goals[rid]
        # Start and goal are free with room for a robot; the straight line is blocked.
        assert w.signed_distance(np.array([s.x, s.y])) > 0.5
        assert w.signed_distance(np.array([g.x, g.y])) > 0.5
        assert _segment_min_distance(w, s, g) < 0.0
    # Spawns are far enough apart not to start in contact.
    sp = np.array([[p.x, p.y] for p in w.spawns.values()])
    d = np.hypot(*(sp[:, None, :] - sp[None, :, :]).transpose(2, 0, 1))
    assert d[np.triu_indices(4, 1)].min() > 2.0


def test_small_warehouse_aisles_are_2m2():
    w = warehouse("small")
    a, b = w.box("shelf_0_0"), w.box("shelf_1_0")
    assert (b.cy - b.sy / 2) - (a.cy + a.sy / 2) == pytest.approx(2.2)


def test_test_scene_block_between_start_and_goal():
    w = make_test_scene()
    s, g = w.spawns["robot_0"], w.goals["robot_0"]
    assert math.hypot(g.x - s.x, g.y - s.y) == pytest.approx(5.0)
    assert _segment_min_distance(w, s, g) < 0.0
    b = w.box("block")
    assert (b.sy, b.sx) == (1.6, 0.6)
    xmin, ymin, xmax, ymax = w.bounds
    assert (xmax - xmin, ymax - ymin) == (10.0, 8.0)


def test_unknown_warehouse_raises():
    with pytest.raises(ValueError):
        warehouse("huge")
