"""Fleet schema and client against a real redis-server on a free loopback port: sharing,
radius queries, TTL expiry, garbage from other clients, a killed, restarted and paused
(SIGSTOP) server, and refused credentials."""
from __future__ import annotations

import json
import math
import os
import signal
import time

import pytest
import redis

from wm_eval.redis_server import RedisServer
from wm_fleet import schema
from wm_fleet.client import FleetClient

FOOT = ((0.35, 0.275), (0.35, -0.275), (-0.35, -0.275), (-0.35, 0.275))


def entry(rid="robot1", x=1.0, y=2.0, t=100.0, wall=None, prio=0, n=10):
    traj = tuple((t + 0.1 * k, x + 0.05 * k, y) for k in range(1, n + 1))
    return schema.RobotEntry(rid, "map", t, time.time() if wall is None else wall,
                             (x, y, 0.0), (0.5, 0.0), FOOT, prio, traj, "worldmodel-1.0.0")


def decode(raw, **kw):
    args = dict(frame="map", wall_now=time.time(), ros_now=100.0)
    args.update(kw)
    return schema.decode(raw, **args)


# ------------------------------------------------------------------ schema
def test_entry_round_trip_and_radius():
    e = entry()
    back = decode(e.encode())
    assert back == e
    assert back.radius == pytest.approx(math.hypot(0.35, 0.275))


@pytest.mark.parametrize("mutate,reason", [
    (lambda d: d.update(schema=2), "schema_version"),
    (lambda d: d.update(frame="odom"), "frame"),
    (lambda d: d.update(wall=time.time() - 10), "too_old"),
    (lambda d: d.update(wall=time.time() + 10), "future"),
    (lambda d: d.update(stamp=200.0), "clock"),
    (lambda d: d["pose"].__setitem__(0, float("nan")), "non_finite"),
    (lambda d: d["pose"].__setitem__(1, 1e9), "absurd"),
    (lambda d: d.update(velocity=[50.0, 0.0]), "absurd"),
    (lambda d: d.update(trajectory=d["trajectory"][::-1]), "bad_trajectory"),
    (lambda d: d.update(trajectory=[[300.0, 0.0, 0.0]]), "clock"),
    (lambda d: d.update(priority="high"), "bad_type"),
    (lambda d: d.update(id="robot 1; DROP"), "bad_id"),
    (lambda d: d.update(footprint=[[0, 0]]), "bad_footprint"),
    (lambda d: d.update(trajectory=[[100.0 + k, 0.0, 0.0] for k in range(500)]), "oversized"),
])
def test_bad_entries_are_refused_with_a_reason(mutate, reason):
    doc = json.loads(entry().encode())
    mutate(doc)
    raw = json.dumps(doc).encode()  # json.dumps writes NaN as NaN: a foreign writer might
    with pytest.raises(schema.EntryError) as e:
        decode(raw)
    assert e.value.reason == reason


def test_garbage_bytes_are_refused():
    for raw, reason in ((b"\xff\xfe", "malformed"), (b"[1, 2]", "malformed"),
                        (b"x" * (schema.MAX_BYTES + 1), "oversized"), (None, "missing")):
        with pytest.raises(schema.EntryError) as e:
            decode(raw)
        assert e.value.reason == reason


# ------------------------------------------------------------------ client, real server
@pytest.fixture
def server():
    with RedisServer() as s:
        yield s


def client(server, rid, fleet="test", **kw):
    r = redis.Redis.from_url(server.url, socket_timeout=0.2, socket_connect_timeout=0.5)
    return FleetClient(r, fleet, rid, clock=time.monotonic, **kw)


def test_neighbours_within_radius_and_ttl_expiry(server):
    a, b, c = (client(server, r, ttl=0.5) for r in ("robot1", "robot2", "robot3"))
    assert a.publish(entry("robot1", 0.0, 0.0))
    assert b.publish(entry("robot2", 3.0, 4.0, prio=2))
    assert c.publish(entry("robot3", 30.0, 0.0))
    near = a.neighbours(0.0, 0.0, 10.0, ros_now=100.0)
    assert [e.robot_id for e in near] == ["robot2"]          # not itself, not robot3
    assert near[0].priority == 2 and near[0].pose[:2] == (3.0, 4.0)
    assert [e.robot_id for e in a.neighbours(0.0, 0.0, 40.0, 100.0)] == ["robot2", "robot3"]
    # GEO distances are metres: robot2 is 5 m away
    assert [e.robot_id for e in a.neighbours(0.0, 0.0, 4.9, 100.0)] == []
    # robot2 stops writing: gone after its TTL, and pruned from the index
    time.sleep(0.7)
    a.publish(entry("robot1", 0.0, 0.0))
    assert a.neighbours(0.0, 0.0, 40.0, 100.0) == []
    assert a.counters["expired"] >= 2
    assert a.redis.zcard(a.geo_key) == 1  # only robot1 itself left
    # a clean shutdown leaves at once
    b.publish(entry("robot2", 3.0, 4.0))
    b.remove()
    assert a.neighbours(0.0, 0.0, 10.0, 100.0) == []


def test_a_read_only_reader_does_not_prune(server):
    """prune_expired=False (the world-model service's read-only user): expired robots are
    skipped but stay in the GEO index; nothing is written."""
    a = client(server, "robot1", ttl=0.3)
    assert a.publish(entry("robot1", 0.0, 0.0))
    time.sleep(0.5)
    reader = client(server, "robot9", prune_expired=False)
    assert reader.neighbours(0.0, 0.0, 10.0, ros_now=100.0) == []
    assert reader.counters["expired"] == 1 and reader.up
    assert reader.redis.zcard(reader.geo_key) == 1


def test_one_write_is_visible_to_the_next_read(server):
    a, b = client(server, "robot1"), client(server, "robot2")
    for k in range(20):
        b.publish(entry("robot2", 1.0 + 0.01 * k, 0.0))
        got = a.neighbours(0.0, 0.0, 5.0, 100.0)
        assert got and got[0].pose[0] == pytest.approx(1.0 + 0.01 * k)


def test_garbage_from_other_clients_is_rejected_and_counted(server):
    a = client(server, "robot1")
    admin = redis.Redis.from_url(server.url)
    good = entry("robot2", 1.0, 0.0)
    client(server, "robot2").publish(good)
    for rid, raw in (("robot3", b"not json"), ("robot4", b'{"schema": 9}'),
                     ("robot5", json.dumps(dict(json.loads(entry("robot5").encode()),
                                                pose=[float("nan"), 0, 0])).encode()),
                     ("robot6", entry("robot7", 1.0, 0.0).encode())):   # under another id
        admin.set(a.prefix + rid, raw)
        admin.geoadd(a.geo_key, (0.0, 0.0, rid))
    got = a.neighbours(0.0, 0.0, 5.0, 100.0)
    assert [e.robot_id for e in got] == ["robot2"]
    assert a.rejected["malformed"] == 1 and a.rejected["schema_version"] == 1
    assert a.rejected["non_finite"] == 1 and a.rejected["id_mismatch"] == 1


def test_server_killed_restarted_and_paused(tmp_path):
    s = RedisServer().start()
    try:
        a = client(s, "robot1")
        assert a.publish(entry()) and a.up
        s.stop()                                   # killed mid-run
        assert not a.publish(entry())
        assert a.neighbours(0.0, 0.0, 5.0, 100.0) is None and not a.up
        assert "Error" in a.last_error
        t0 = time.monotonic()
        for _ in range(20):                         # backoff: most calls are not even tried
            a.publish(entry())
        assert a.counters["skipped_while_down"] >= 15
        assert time.monotonic() - t0 < 1.0          # and none of them blocked
        s = RedisServer(port=s.port, password=s.password).start()   # back, same address
        deadline = time.monotonic() + 10.0
        while not a.publish(entry()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert a.up and a.counters["reconnects"] >= 2
        # paused (SIGSTOP): a slow server costs at most the socket timeout per call
        os.kill(s.proc.pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            assert not a.publish(entry())
            assert time.monotonic() - t0 < 1.0 and not a.up
        finally:
            os.kill(s.proc.pid, signal.SIGCONT)
        a.backoff.next_try = 0.0  # skip the wait for the test
        assert a.publish(entry()) and a.up
    finally:
        s.stop()


def test_refused_credentials_mark_the_link_down_with_the_reason(server):
    bad = redis.Redis(host="127.0.0.1", port=server.port, password="wrong",
                      socket_timeout=0.2, socket_connect_timeout=0.5)
    a = FleetClient(bad, "test", "robot1")
    assert not a.publish(entry())
    assert not a.up and ("Auth" in a.last_error or "WRONGPASS" in a.last_error)
    assert server.password not in a.last_error and "wrong" not in a.last_error


def test_a_robot_starts_while_redis_is_down_and_joins_when_it_comes_up():
    port = RedisServer().port
    pw = "pw-for-this-test-only"
    url = "redis://:%s@127.0.0.1:%d/0" % (pw, port)
    made = []

    def factory():  # like connection.connect for a cluster: talks to the server at once
        r = redis.Redis.from_url(url, socket_timeout=0.2, socket_connect_timeout=0.5)
        r.ping()
        made.append(r)
        return r
    a = FleetClient(factory, "test", "robot1")
    assert not a.publish(entry()) and not a.up and made == []
    with RedisServer(port=port, password=pw):
        a.backoff.next_try = 0.0
        assert a.publish(entry()) and a.up and len(made) == 1
