"""map_server maps: round trips, pixel semantics, refusals, and the shipped config/maps."""
import numpy as np
import pytest

from wm_common.map_io import MapError, OccupancyMap, read_map, write_map, write_pgm


def sample_map(seed=0, shape=(23, 31)):
    rng = np.random.default_rng(seed)
    values = rng.choice(np.array([-1, 0, 100], dtype=np.int8), size=shape, p=[0.1, 0.6, 0.3])
    return OccupancyMap(values, 0.05, -3.25, 1.5)


def write_yaml(path, **keys):
    doc = dict(image="m.pgm", resolution=0.1, origin=[0.0, 0.0, 0.0], negate=0,
               occupied_thresh=0.65, free_thresh=0.25)
    doc.update(keys)
    text = "".join("%s: %s\n" % (k, v) for k, v in doc.items() if v is not None)
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("negate", [False, True])
@pytest.mark.parametrize("mode", ["trinary", "raw"])
def test_round_trip(tmp_path, binary, negate, mode):
    m = sample_map()
    yaml_path, pgm_path = write_map(str(tmp_path / "a.yaml"), m, mode=mode, negate=negate,
                                    binary=binary)
    assert open(pgm_path, "rb").read(2) == (b"P5" if binary else b"P2")
    back = read_map(yaml_path)
    np.testing.assert_array_equal(back.values, m.values)
    assert (back.resolution, back.origin_x, back.origin_y) == (0.05, -3.25, 1.5)
    assert back.frame_id == "map"


def test_row_order_and_geometry(tmp_path):
    # Image row 0 is the top of the map (largest y): one black pixel top-left.
    img = np.full((4, 5), 254, dtype=np.uint8)
    img[0, 0] = 0
    write_pgm(str(tmp_path / "m.pgm"), img)
    m = read_map(write_yaml(tmp_path / "m.yaml", origin=[1.0, 2.0, 0.0]))
    assert m.occupied.sum() == 1 and m.occupied[3, 0]
    ix, iy, inside = m.world_to_cell(np.array([1.05, 2.35]))
    assert (int(ix), int(iy), bool(inside)) == (0, 3, True)
    grid = m.to_grid()
    assert grid.sample(np.array([1.05, 2.35])) == pytest.approx(1.0)
    assert grid.sample(np.array([1.45, 2.05])) == pytest.approx(0.0)


def test_trinary_thresholds_and_negate(tmp_path):
    # occ = 1 - p/255: 0 -> 1.0 (occupied), 89 -> 0.651 (occupied), 90 -> 0.647 (unknown),
    # 191 -> 0.251 (unknown), 192 -> 0.247 (free), 254 -> free.
    img = np.array([[0, 89, 90, 191, 192, 254]], dtype=np.uint8)
    img = np.vstack([img, img])
    write_pgm(str(tmp_path / "m.pgm"), img)
    m = read_map(write_yaml(tmp_path / "m.yaml"))
    np.testing.assert_array_equal(m.values[0], [100, 100, -1, -1, 0, 0])
    assert m.unknown[0].tolist() == [False, False, True, True, False, False]
    assert m.free[0].tolist() == [False, False, False, False, True, True]
    # negate: occ = p/255 (0, 0.349, 0.353, 0.749, 0.753, 0.996), black is free.
    m = read_map(write_yaml(tmp_path / "n.yaml", negate=1))
    np.testing.assert_array_equal(m.values[0], [0, -1, -1, 100, 100, 100])


def test_scale_and_raw_modes(tmp_path):
    img = np.array([[0, 127, 254, 255], [50, 100, 101, 255]], dtype=np.uint8)
    write_pgm(str(tmp_path / "m.pgm"), img)
    m = read_map(write_yaml(tmp_path / "s.yaml", mode="scale"))
    # 127: occ = 0.502 -> (0.502 - 0.25) / 0.4 * 100 = 63 (in between, not unknown)
    np.testing.assert_array_equal(m.values[1], [100, 63, 0, 0])
    assert m.occupied[1, 1] and not m.unknown.any()
    m = read_map(write_yaml(tmp_path / "r.yaml", mode="raw"))
    # raw: the pixel is the value; above 100 is unknown.
    np.testing.assert_array_equal(m.values[1], [0, -1, -1, -1])
    np.testing.assert_array_equal(m.values[0], [50, 100, -1, -1])


def test_p2_with_comments_and_low_maxval(tmp_path):
    (tmp_path / "m.pgm").write_text("P2\n# a comment\n3 2 # inline\n15\n0 15 7\n15 15 0\n")
    m = read_map(write_yaml(tmp_path / "m.yaml"))
    # maxval 15: 7/15 -> occ 0.53, unknown; 15 -> free; 0 -> occupied. Rows flipped.
    np.testing.assert_array_equal(m.values, [[0, 0, 100], [100, 0, -1]])


@pytest.mark.parametrize("case, needle", [
    ("missing_yaml", "cannot read map file"),
    ("missing_image", "does not exist"),
    ("not_mapping", "YAML mapping"),
    ("no_image_key", "'image'"),
    ("no_resolution", "'resolution'"),
    ("bad_resolution", "resolution must be positive"),
    ("yaw", "yaw"),
    ("short_origin", "origin must be [x, y, yaw]"),
    ("thresholds", "free_thresh < occupied_thresh"),
    ("mode", "unknown mode"),
    ("negate", "negate must be 0 or 1"),
    ("png", "not a PGM"),
    ("p6", "only PGM P5 binary and P2 ascii"),
    ("header", "bad PGM header"),
    ("truncated", "truncated PGM raster"),
    ("sixteen_bit", "16-bit"),
    ("p2_range", "outside 0..255"),
])
def test_bad_files_raise(tmp_path, case, needle):
    img = np.full((3, 4), 254, dtype=np.uint8)
    write_pgm(str(tmp_path / "m.pgm"), img)
    keys = {}
    pgm = tmp_path / "m.pgm"
    if case == "missing_yaml":
        path = str(tmp_path / "nope.yaml")
    elif case == "not_mapping":
        (tmp_path / "m.yaml").write_text("- just\n- a list\n")
        path = str(tmp_path / "m.yaml")
    else:
        keys = {"missing_image": dict(image="other.pgm"), "no_image_key": dict(image=None),
                "no_resolution": dict(resolution=None), "bad_resolution": dict(resolution=0),
                "yaw": dict(origin=[0.0, 0.0, 0.5]), "short_origin": dict(origin=[0.0, 0.0]),
                "thresholds": dict(free_thresh=0.7), "mode": dict(mode="fancy"),
                "negate": dict(negate=2)}.get(case, {})
        payload = {"png": b"\x89PNG\r\n\x1a\n", "p6": b"P6\n4 3\n255\n" + bytes(36),
                   "header": b"P5\n4 x\n255\n" + bytes(12),
                   "truncated": b"P5\n4 3\n255\n" + bytes(5),
                   "sixteen_bit": b"P5\n4 3\n65535\n" + bytes(24),
                   "p2_range": b"P2\n2 1\n255\n3 300\n"}.get(case)
        if payload is not None:
            pgm.write_bytes(payload)
        path = write_yaml(tmp_path / "m.yaml", **keys)
    with pytest.raises(MapError) as err:
        read_map(path)
    assert needle in str(err.value)


def test_unsupported_yaw_says_unsupported(tmp_path):
    write_pgm(str(tmp_path / "m.pgm"), np.zeros((2, 2), dtype=np.uint8))
    with pytest.raises(MapError, match="unsupported"):
        read_map(write_yaml(tmp_path / "m.yaml", origin=[0.0, 0.0, 1.57]))
