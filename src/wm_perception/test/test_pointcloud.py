from __future__ import annotations

import array

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wm_common import point_layouts as pl
from wm_common.point_layouts import FieldSpec, Layout, pack_points
from wm_perception.pointcloud import (REASONS, CloudError, DecodedCloud, decode_message,
                                      decode_points)


def _scene(n, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "x": rng.uniform(-50, 50, n).astype(np.float32),
        "y": rng.uniform(-50, 50, n).astype(np.float32),
        "z": rng.uniform(-3, 5, n).astype(np.float32),
    }


def _decode(layout, data, width, height, row_step=None, big=False, **kw):
    if row_step is None:
        row_step = width * layout.point_step
    return decode_points(layout.fields, data, width, height, layout.point_step, row_step, big,
                         **kw)


def _expected_time(layout, raw):
    scale = layout.time_scale
    if scale is None:
        scale = 1e-9 if layout.field(layout.time_field).datatype in pl.INTEGER_DATATYPES else 1.0
    dt = pl.numpy_dtype(layout.field(layout.time_field).datatype)
    return raw.astype(dt).astype(np.float64) * scale


TIME_RAW = {
    "ouster": lambda n: np.arange(n, dtype=np.uint64) * 97_656,          # ns since scan start
    "velodyne": lambda n: (np.arange(n) * 1e-5).astype(np.float32),      # s
    "hesai": lambda n: 1.7e9 + np.arange(n) * 1e-6,                      # s, absolute
    "hesai_general": lambda n: 1.7e9 + np.arange(n) * 1e-6,
    "livox": lambda n: 1.7e18 + np.arange(n) * 1000.0,                   # ns as double
}


@pytest.mark.parametrize("name", sorted(pl.LAYOUTS))
@pytest.mark.parametrize("big", [False, True])
def test_driver_layouts_round_trip(name, big):
    layout = pl.LAYOUTS[name]
    n = 64
    cols = _scene(n, seed=len(name))
    extras = {f.name for f in layout.fields} - {"x", "y", "z"}
    for extra in sorted(extras):
        cols[extra] = np.arange(n) % 200  # fits every integer field type
    if layout.time_field:
        cols[layout.time_field] = TIME_RAW[name](n)
    data = pack_points(layout, cols, is_bigendian=big, fill=0xFF)
    assert len(data) == n * layout.point_step
    out = _decode(layout, data, n, 1, big=big, time_field=layout.time_field,
                  time_scale=layout.time_scale)
    expect = np.stack([cols["x"], cols["y"], cols["z"]], axis=1)
    np.testing.assert_array_equal(out.xyz, expect)
    assert out.xyz.dtype == np.float32 and out.n_points == n and out.n_invalid == 0
    if layout.time_field:
        np.testing.assert_allclose(out.time, _expected_time(layout, cols[layout.time_field]),
                                   rtol=1e-12, atol=1e-12)
    else:
        assert out.time is None


def test_layout_tables_match_driver_sizes():
    assert pl.OUSTER.point_step == 48 and pl.OUSTER.field("range").offset == 32
    assert pl.VELODYNE.point_step == 22 and pl.VELODYNE.field("time").offset == 18
    assert pl.HESAI.point_step == 26 and pl.HESAI.field("timestamp").offset == 18
    assert pl.HESAI_GENERAL.point_step == 48 and pl.HESAI_GENERAL.field("ring").offset == 32
    assert pl.LIVOX.point_step == 26 and pl.LIVOX.field("timestamp").offset == 18
    assert pl.REALSENSE_XYZRGB.point_step == 20 and pl.REALSENSE_XYZ.point_step == 16
    for layout in pl.LAYOUTS.values():
        for f in layout.fields:
            assert f.offset + pl.DATATYPE_SIZES[f.datatype] * f.count <= layout.point_step


def test_ouster_time_is_nanoseconds_to_seconds():
    cols = _scene(3)
    cols["t"] = np.array([0, 50_000_000, 99_999_999], np.uint32)
    data = pack_points(pl.OUSTER, cols)
    out = _decode(pl.OUSTER, data, 3, 1, time_field="t")  # scale picked from the uint32 type
    np.testing.assert_allclose(out.time, [0.0, 0.05, 0.099999999])


def test_organized_cloud_with_nan_and_zero_holes_keeps_time_aligned():
    h, w = 16, 32
    cols = _scene(h * w, seed=3)
    cols["t"] = np.arange(h * w, dtype=np.uint32)
    hole_nan = np.zeros(h * w, bool)
    hole_nan[::7] = True
    hole_zero = np.zeros(h * w, bool)
    hole_zero[3::11] = True
    hole_zero &= ~hole_nan
    for k in "xyz":
        cols[k] = np.where(hole_nan, np.nan, np.where(hole_zero, 0.0, cols[k])).astype(np.float32)
    # One NaN in a single coordinate is enough to drop a point.
    cols["y"][5] = np.inf
    data = pack_points(pl.OUSTER, cols, height=h)
    out = _decode(pl.OUSTER, data, w, h, time_field="t")
    keep = ~hole_nan & ~hole_zero
    keep[5] = False
    np.testing.assert_array_equal(out.xyz, np.stack([cols[k] for k in "xyz"], 1)[keep])
    np.testing.assert_allclose(out.time, np.flatnonzero(keep) * 1e-9)
    assert out.n_points == h * w and out.n_invalid == int((~keep).sum())
    assert out.n_valid + out.n_invalid == h * w


def test_point_with_one_zero_coordinate_is_kept():
    cols = {"x": np.array([0.0, 1.0], np.float32), "y": np.array([0.0, 0.0], np.float32),
            "z": np.array([0.0, 0.0], np.float32)}
    out = _decode(pl.XYZ, pack_points(pl.XYZ, cols), 2, 1)
    np.testing.assert_array_equal(out.xyz, [[1.0, 0.0, 0.0]])
    assert out.n_invalid == 1


def test_row_step_padding_is_skipped():
    h, w = 4, 10
    cols = _scene(h * w, seed=5)
    row_step = w * pl.VELODYNE.point_step + 13
    data = pack_points(pl.VELODYNE, cols, height=h, row_step=row_step, fill=0xFF)
    assert len(data) == h * row_step
    out = _decode(pl.VELODYNE, data, w, h, row_step=row_step)
    np.testing.assert_array_equal(out.xyz, np.stack([cols[k] for k in "xyz"], 1))


def test_trailing_bytes_are_tolerated():
    cols = _scene(5)
    data = pack_points(pl.XYZ, cols) + b"\x00" * 7
    out = _decode(pl.XYZ, data, 5, 1)
    assert out.n_valid == 5


def test_float64_xyz_at_unusual_offsets():
    layout = Layout("f64", (FieldSpec("z", 2, pl.FLOAT64), FieldSpec("x", 10, pl.FLOAT64),
                            FieldSpec("y", 19, pl.FLOAT32)), 31)
    rng = np.random.default_rng(1)
    cols = {k: rng.uniform(-100, 100, 20) for k in "xyz"}
    for big in (False, True):
        data = pack_points(layout, cols, is_bigendian=big, fill=0xFF)
        out = _decode(layout, data, 20, 1, big=big)
        expect = np.stack([cols["x"], cols["y"].astype(np.float32), cols["z"]], 1)
        np.testing.assert_array_equal(out.xyz, expect.astype(np.float32))


def test_absurd_points_are_dropped_and_counted_separately():
    cols = {"x": np.array([1.0, 2000.0, np.nan, 1e300, -999.0]),
            "y": np.array([1.0, 0.0, 0.0, 0.0, 0.0]), "z": np.zeros(5)}
    layout = Layout("f64", tuple(FieldSpec(k, 8 * i, pl.FLOAT64) for i, k in enumerate("xyz")),
                    24)
    out = _decode(layout, pack_points(layout, cols), 5, 1)
    np.testing.assert_array_equal(out.xyz, [[1, 1, 0], [-999, 0, 0]])
    assert (out.n_invalid, out.n_absurd) == (1, 2)
    # Whatever max_abs says, a value float32 cannot hold is absurd, never inf in the output.
    out = _decode(layout, pack_points(layout, cols), 5, 1, max_abs=1e301)
    np.testing.assert_array_equal(out.xyz, [[1, 1, 0], [2000, 0, 0], [-999, 0, 0]])
    assert (out.n_invalid, out.n_absurd) == (1, 1)


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "array", "numpy"])
def test_accepts_every_buffer_type_rclpy_or_callers_use(kind):
    cols = _scene(9)
    raw = pack_points(pl.OUSTER, cols)
    data = {"bytes": raw, "bytearray": bytearray(raw), "memoryview": memoryview(raw),
            "array": array.array("B", raw), "numpy": np.frombuffer(raw, np.uint8)}[kind]
    out = _decode(pl.OUSTER, data, 9, 1)
    np.testing.assert_array_equal(out.xyz, np.stack([cols[k] for k in "xyz"], 1))


def test_decode_does_not_alias_the_message_buffer():
    raw = bytearray(pack_points(pl.XYZ, _scene(4)))
    out = _decode(pl.XYZ, raw, 4, 1)
    before = out.xyz.copy()
    raw[:] = b"\x00" * len(raw)
    np.testing.assert_array_equal(out.xyz, before)


def test_decode_message_duck_typed():
    class Msg:
        fields = list(pl.XYZ.fields)
        data = pack_points(pl.XYZ, _scene(3))
        width, height, point_step, row_step, is_bigendian = 3, 1, 12, 36, False

    assert decode_message(Msg()).n_valid == 3
    with pytest.raises(CloudError) as e:
        decode_message(object())
    assert e.value.reason == "bad_header"


def test_empty_cloud():
    with pytest.raises(CloudError) as e:
        _decode(pl.XYZ, b"", 0, 1)
    assert e.value.reason == "empty"
    out = _decode(pl.OUSTER, b"", 0, 1, allow_empty=True, time_field="t")
    assert out.xyz.shape == (0, 3) and out.time.shape == (0,) and out.n_points == 0
    # packing a cloud without points (what a driver with nothing to send publishes)
    assert pack_points(pl.OUSTER, {"x": np.zeros(0), "y": np.zeros(0), "z": np.zeros(0)}) == b""


def _good():
    return dict(fields=list(pl.XYZ.fields), data=pack_points(pl.XYZ, _scene(4)), width=4,
                height=1, point_step=12, row_step=48, is_bigendian=False)


def _fields(*specs):
    return [FieldSpec(*s) for s in specs]


XYZ3 = [("x", 0, pl.FLOAT32), ("y", 4, pl.FLOAT32), ("z", 8, pl.FLOAT32)]

BAD_CASES = [
    ("bad_header", dict(width=-1)),
    ("bad_header", dict(height=1.5)),
    ("bad_header", dict(point_step=None)),
    ("bad_buffer", dict(data=[0] * 48)),
    ("bad_buffer", dict(data=memoryview(bytes(96))[::2])),
    ("bad_field", dict(fields=[object()])),
    ("bad_field", dict(fields=None)),
    ("bad_field", dict(fields=_fields(*XYZ3) + [FieldSpec("i", 0, pl.UINT8, -1)])),
    ("bad_field", dict(fields=_fields(*XYZ3) + [FieldSpec(b"i", 0, pl.UINT8)])),
    ("missing_field", dict(fields=_fields(*XYZ3[:2]))),
    ("missing_field", dict(time_field="t")),
    ("duplicate_field", dict(fields=_fields(*XYZ3, ("x", 0, pl.FLOAT32)))),
    ("bad_datatype", dict(fields=_fields(("x", 0, pl.INT32), *XYZ3[1:]))),
    ("bad_datatype", dict(fields=_fields(("x", 0, 0), *XYZ3[1:]))),
    ("bad_datatype", dict(fields=_fields(*XYZ3, ("t", 0, 9)), time_field="t")),
    ("bad_count", dict(fields=_fields(("x", 0, pl.FLOAT32, 2), *XYZ3[1:]))),
    ("bad_count", dict(fields=_fields(*XYZ3, ("t", 0, pl.UINT8, 3)), time_field="t")),
    ("bad_field_offset", dict(fields=_fields(("x", 0, pl.FLOAT32), ("y", 4, pl.FLOAT32),
                                             ("z", 9, pl.FLOAT32)))),
    ("bad_field_offset", dict(fields=_fields(*XYZ3, ("i", -1, pl.UINT8)))),
    ("bad_field_offset", dict(fields=_fields(*XYZ3, ("rgb", 10, pl.UINT8, 3)))),
    ("bad_field_offset", dict(fields=_fields(("x", 8, pl.FLOAT64), *XYZ3[1:]))),
    ("empty", dict(width=0, row_step=0)),
    ("empty", dict(height=0)),
    ("too_large", dict(width=2_000_001, row_step=12 * 2_000_001)),
    ("row_step", dict(row_step=47)),
    ("size_mismatch", dict(data=bytes(47))),
    ("size_mismatch", dict(height=2)),
]


@pytest.mark.parametrize("reason,override", BAD_CASES,
                         ids=["%s-%d" % (c[0], i) for i, c in enumerate(BAD_CASES)])
def test_every_error_reason(reason, override):
    args = _good()
    args.update(override)
    with pytest.raises(CloudError) as e:
        decode_points(**args)
    assert e.value.reason == reason
    assert isinstance(e.value, ValueError)


def test_reasons_list_is_complete():
    assert {c[0] for c in BAD_CASES} == set(REASONS)


def test_unknown_extra_datatype_is_ignored():
    fields = _fields(*XYZ3, ("vendor", 400, 42))
    args = _good()
    args["fields"] = fields
    assert decode_points(**args).n_valid == 4


def test_max_points_is_configurable():
    args = _good()
    with pytest.raises(CloudError) as e:
        decode_points(**args, max_points=3)
    assert e.value.reason == "too_large"
    with pytest.raises(ValueError):
        decode_points(**args, max_points=0)


# --- property-based ------------------------------------------------------------------------

NUMERIC = [pl.INT8, pl.UINT8, pl.INT16, pl.UINT16, pl.INT32, pl.UINT32, pl.FLOAT32,
           pl.FLOAT64]


@st.composite
def random_clouds(draw):
    """A valid cloud with random offsets, gaps, extra fields, byte order, shape, row padding
    and holes, plus what decoding it must return."""
    xyz_types = [draw(st.sampled_from([pl.FLOAT32, pl.FLOAT64])) for _ in range(3)]
    extras = draw(st.lists(st.tuples(st.sampled_from(NUMERIC), st.integers(1, 3)),
                           max_size=4))
    time_type = draw(st.sampled_from([None, pl.UINT32, pl.FLOAT64, pl.INT16]))
    specs = [(k, t, 1) for k, t in zip("xyz", xyz_types)]
    specs += [("extra%d" % i, t, c) for i, (t, c) in enumerate(extras)]
    if time_type is not None:
        specs.append(("t", time_type, 1))
    order = draw(st.permutations(range(len(specs))))
    offset = 0
    fields = []
    for i in order:
        name, dtype, count = specs[i]
        offset += draw(st.integers(0, 5))
        fields.append(FieldSpec(name, offset, dtype, count))
        offset += pl.DATATYPE_SIZES[dtype] * count
    point_step = offset + draw(st.integers(0, 9))
    layout = Layout("random", tuple(fields), point_step)
    height = draw(st.integers(1, 4))
    width = draw(st.integers(1, 24))
    row_step = width * point_step + draw(st.integers(0, 17))
    big = draw(st.booleans())
    seed = draw(st.integers(0, 2 ** 32 - 1))

    rng = np.random.default_rng(seed)
    n = width * height
    cols = {}
    for name, dtype, count in specs:
        shape = (n,) if count == 1 else (n, count)
        if name in "xyz":
            cols[name] = rng.uniform(-500, 500, shape)
        elif dtype in (pl.FLOAT32, pl.FLOAT64):
            cols[name] = rng.uniform(-1e6, 1e6, shape)
        else:
            info = np.iinfo(pl.numpy_dtype(dtype))
            cols[name] = rng.integers(info.min, info.max, shape, endpoint=True)
    hole = rng.random(n) < 0.2
    zero = (rng.random(n) < 0.1) & ~hole
    for k in "xyz":
        cols[k] = np.where(hole, np.nan, np.where(zero, 0.0, cols[k]))
    data = pack_points(layout, cols, is_bigendian=big, height=height, row_step=row_step,
                       fill=0xFF)
    xyz = np.stack([cols[k].astype(pl.numpy_dtype(t)) for k, t in zip("xyz", xyz_types)], 1)
    keep = ~hole & ~zero
    expect_t = None
    if time_type is not None:
        raw = cols["t"].astype(pl.numpy_dtype(time_type)).astype(np.float64)
        expect_t = raw[keep] * (1.0 if time_type == pl.FLOAT64 else 1e-9)
    return (layout, data, width, height, row_step, big,
            xyz[keep].astype(np.float32), expect_t, int((~keep).sum()))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_clouds())
def test_random_valid_layouts_round_trip_exactly(case):
    layout, data, width, height, row_step, big, expect_xyz, expect_t, n_holes = case
    tf = "t" if expect_t is not None else None
    out = decode_points(layout.fields, data, width, height, layout.point_step, row_step, big,
                        time_field=tf)
    np.testing.assert_array_equal(out.xyz, expect_xyz)
    assert out.n_invalid == n_holes and out.n_absurd == 0
    assert out.n_points == width * height
    if tf:
        np.testing.assert_array_equal(out.time, expect_t)
    # A reversed field list must not change anything: offsets, not order, locate fields.
    out2 = decode_points(list(reversed(layout.fields)), bytearray(data), width, height,
                         layout.point_step, row_step, big, time_field=tf)
    np.testing.assert_array_equal(out2.xyz, expect_xyz)


def _check_result(out, time_field):
    assert isinstance(out, DecodedCloud)
    assert out.xyz.dtype == np.float32 and out.xyz.ndim == 2 and out.xyz.shape[1] == 3
    assert np.isfinite(out.xyz).all()
    assert (np.abs(out.xyz) <= 1000.0).all()
    assert not (out.xyz == 0).all(axis=1).any()
    assert out.n_valid + out.n_invalid + out.n_absurd == out.n_points
    if time_field is None:
        assert out.time is None
    else:
        assert out.time.shape == (out.n_valid,)


field_garbage = st.builds(
    FieldSpec,
    st.sampled_from(["x", "y", "z", "t", "intensity", ""]),
    st.integers(-8, 70),
    st.integers(-1, 10),
    st.integers(-1, 3),
)


@st.composite
def garbage_clouds(draw):
    """Messages from a broken or hostile publisher. Half are fully random; the other half
    are nearly valid (x/y/z present, sizes off by a little) so that the decoding path itself,
    not just the validation in front of it, meets random bytes and shapes."""
    if draw(st.booleans()):
        fields = draw(st.lists(field_garbage, max_size=8))
        width, height = draw(st.integers(-2, 40)), draw(st.integers(-1, 4))
        point_step, row_step = draw(st.integers(-1, 70)), draw(st.integers(-1, 700))
        data = draw(st.binary(max_size=600))
    else:
        fields = [FieldSpec(k, draw(st.integers(0, 40)),
                            draw(st.sampled_from([pl.FLOAT32, pl.FLOAT64])), 1) for k in "xyz"]
        fields += draw(st.lists(st.builds(FieldSpec, st.sampled_from(["t", "i", ""]),
                                          st.integers(0, 40), st.integers(1, 8),
                                          st.integers(0, 3)), max_size=3))
        # At most one thing broken, so most of these get past validation.
        broken = draw(st.sampled_from(["none", "none", "none", "datatype", "count", "offset",
                                       "row_step", "size"]))
        k = draw(st.integers(0, 2))
        if broken == "datatype":
            fields[k] = fields[k]._replace(datatype=draw(st.sampled_from([0, 5, 9])))
        elif broken == "count":
            fields[k] = fields[k]._replace(count=draw(st.sampled_from([0, 2])))
        fields = draw(st.permutations(fields))
        ends = [f.offset + pl.DATATYPE_SIZES.get(f.datatype, 0) * f.count for f in fields]
        point_step = max(ends) + draw(st.integers(-2 if broken == "offset" else 0, 8))
        width, height = draw(st.integers(0, 30)), draw(st.sampled_from([0, 1, 1, 2, 3]))
        row_step = width * point_step + draw(st.integers(-3 if broken == "row_step" else 0, 12))
        size = max(row_step * height + draw(st.integers(-4 if broken == "size" else 0, 8)), 0)
        data = draw(st.binary(min_size=min(size, 4000), max_size=min(size, 4000)))
    big = draw(st.booleans())
    time_field = draw(st.sampled_from([None, None, "t", "x", "nope"]))
    return fields, data, width, height, point_step, row_step, big, time_field


@settings(max_examples=500, deadline=None)
@given(garbage_clouds())
def test_garbage_either_decodes_cleanly_or_raises_cloud_error(case):
    fields, data, width, height, point_step, row_step, big, time_field = case
    try:
        out = decode_points(fields, data, width, height, point_step, row_step, big,
                            time_field=time_field, max_points=10_000)
    except CloudError as e:
        assert e.reason in REASONS
        return
    _check_result(out, time_field)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), name=st.sampled_from(sorted(pl.LAYOUTS)), width=st.integers(1, 30),
       height=st.integers(1, 3), pad=st.integers(0, 9), big=st.booleans())
def test_valid_header_with_random_payload_yields_only_finite_points(data, name, width, height,
                                                                    pad, big):
    layout = pl.LAYOUTS[name]
    row_step = width * layout.point_step + pad
    payload = data.draw(st.binary(min_size=row_step * height, max_size=row_step * height))
    out = decode_points(layout.fields, payload, width, height, layout.point_step, row_step,
                        big, time_field=layout.time_field, time_scale=layout.time_scale)
    _check_result(out, layout.time_field)


def test_pack_points_layout_and_errors():
    data = pack_points(pl.VELODYNE, {"x": [1.0, 2.0], "ring": [7, 9]}, is_bigendian=True)
    assert len(data) == 44
    assert data[0:4] == np.array([1.0], ">f4").tobytes()
    assert data[22 + 16:22 + 18] == (9).to_bytes(2, "big")
    assert data[4:16] == bytes(12)  # missing columns are zero
    with pytest.raises(ValueError):
        pack_points(pl.XYZ, {"w": [1.0]})
    with pytest.raises(ValueError):
        pack_points(pl.XYZ, {"x": [1.0], "y": [1.0, 2.0]})
    with pytest.raises(ValueError):
        pack_points(pl.XYZ, {"x": [1.0, 2.0, 3.0]}, height=2)
    with pytest.raises(ValueError):
        pack_points(pl.XYZ, {"x": [1.0, 2.0]}, row_step=23)
    with pytest.raises(ValueError):
        pack_points(Layout("bad", (FieldSpec("x", 10, pl.FLOAT32),), 12), {"x": [1.0]})
