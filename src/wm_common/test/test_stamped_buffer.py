from wm_common.stamped_buffer import StampedBuffer


def test_nearest_within_tolerance_and_order():
    b = StampedBuffer(maxlen=3)
    assert b.latest is None and b.nearest(1.0, 0.1) is None
    for t in (1.0, 1.02, 1.04, 1.06):
        assert b.push(t, "v%.2f" % t)
    assert len(b) == 3 and b.latest_stamp == 1.06       # oldest dropped
    assert b.nearest(1.031, 0.1) == (1.04, "v1.04")
    assert b.nearest(1.5, 0.1) is None                   # too far
    assert not b.push(1.05, "late") and b.latest == (1.06, "v1.06")
