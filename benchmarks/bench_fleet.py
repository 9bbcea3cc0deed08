"""Fleet sharing at scale: N simulated robots, each writing its entry and reading its
neighbours at 10 Hz through wm_fleet.client.FleetClient, against a real redis-server on
loopback (and a 3-node Redis Cluster).

Robots stand on a grid 3 m apart (a warehouse floor), read radius 10 m (about 35 neighbours
each). The robots of one run are driven from worker processes, each running its share of the
robots' cycles back to back; a cycle is one robot's publish + neighbours. Measured:

- cycle time per robot (write + read, client side), median and p99;
- publish-to-visible latency: a robot's write, to the first read of another robot that
  returns it (wall clock, same machine);
- achieved cycles per second against the N * 10 Hz the fleet needs;
- Redis commands per robot per cycle (INFO commandstats) and Redis CPU seconds per second
  (INFO cpu), from which: how many robots one Redis serves within one control period.

The clients share the 2 cores with the server here: at large N the client side saturates
first, so server CPU per robot-cycle is the number that extrapolates, not the achieved rate.
"""
from __future__ import annotations

import math
import multiprocessing as mp
import os
import shutil
import subprocess
import tempfile
import time
from typing import List, Optional

import redis
from benchlib import main, row

from wm_eval.redis_server import RedisServer, free_port
from wm_fleet import schema
from wm_fleet.client import FleetClient

RATE = 10.0
FOOT = ((0.35, 0.275), (0.35, -0.275), (-0.35, -0.275), (-0.35, 0.275))


def _entry(rid: str, x: float, y: float, t: float) -> schema.RobotEntry:
    traj = tuple((t + 0.1 * k, x + 0.05 * k, y) for k in range(1, 11))
    return schema.RobotEntry(rid, "map", t, time.time(), (x, y, 0.0), (0.5, 0.0), FOOT, 0,
                             traj, "worldmodel-1.0.0")


def _worker(make_client, ids, seconds, out_q, fleet):
    try:
        _work(make_client, ids, seconds, out_q, fleet)
    except Exception as e:  # report, never leave the parent waiting
        out_q.put(([], [], 0, repr(e)))


def _work(make_client, ids, seconds, out_q, fleet):
    clients = {}
    side = int(math.ceil(math.sqrt(ids[-1] + 1)))
    fleets = fleet.split(",")   # robot i belongs to fleets[i % len(fleets)]
    for i in ids:
        clients[i] = FleetClient(make_client(), fleets[i % len(fleets)], "r%d" % i, ttl=2.0,
                                 max_age=5.0, time_tolerance=5.0)
    cycle_ms, latency_ms, cycles = [], [], 0
    seen = {}
    t_end = time.monotonic() + seconds
    period = 1.0 / RATE
    next_t = {i: time.monotonic() + period * k / len(ids) for k, i in enumerate(ids)}
    while time.monotonic() < t_end:
        for i in ids:
            now = time.monotonic()
            if now < next_t[i]:
                continue
            next_t[i] += period
            if now - next_t[i] > period:   # fell behind: skip, do not pile up
                next_t[i] = now + period
            x, y = 3.0 * (i % side), 3.0 * (i // side)
            t0 = time.perf_counter()
            c = clients[i]
            c.publish(_entry(c.robot_id, x, y, time.time()))
            got = c.neighbours(x, y, 10.0, ros_now=time.time()) or []
            cycle_ms.append((time.perf_counter() - t0) * 1e3)
            cycles += 1
            wall = time.time()
            for e in got:   # first time this reader sees that writer's newest write
                key = (i, e.robot_id)
                if seen.get(key) != e.wall:
                    seen[key] = e.wall
                    latency_ms.append((wall - e.wall) * 1e3)
        time.sleep(0.0005)
    errors = sorted({c.last_error for c in clients.values() if c.last_error})
    out_q.put((cycle_ms, latency_ms[-20000:], cycles, "; ".join(errors)[:300]))


def _commands(nodes) -> int:
    return sum(v["calls"] for r in nodes for k, v in r.info("commandstats").items()
               if not k.endswith(("info", "ping", "cluster", "command")))


def _cpu(nodes) -> float:
    return sum(float(c["used_cpu_sys"]) + float(c["used_cpu_user"])
               for c in (r.info("cpu") for r in nodes))


def run_fleet(n: int, make_client, admin, seconds: float, workers: int, fleet: str) -> dict:
    ids = list(range(n))
    chunks = [ids[k::workers] for k in range(workers)]
    q = mp.Queue()
    c0, cpu0, t0 = _commands(admin), _cpu(admin), time.monotonic()
    per0 = [_cpu([a]) for a in admin]
    procs = [mp.Process(target=_worker, args=(make_client, sorted(ch), seconds, q, fleet))
             for ch in chunks if ch]
    for p in procs:
        p.start()
    results = [q.get(timeout=seconds + 120) for _ in procs]
    errors = [r[3] for r in results if r[3]]
    for p in procs:
        p.join()
    wall = time.monotonic() - t0
    c1, cpu1 = _commands(admin), _cpu(admin)
    per = [_cpu([a]) - c for a, c in zip(admin, per0)]
    cycle = [x for r in results for x in r[0]]
    lat = [x for r in results for x in r[1]]
    cycles = sum(r[2] for r in results)
    return {"cycle": cycle, "latency": lat, "cycles": cycles, "wall": wall,
            "cmds_per_cycle": (c1 - c0) / max(cycles, 1),
            "redis_cpu_per_s": (cpu1 - cpu0) / wall,
            "redis_cpu_us_per_cycle": 1e6 * (cpu1 - cpu0) / max(cycles, 1),
            "errors": errors,
            "busiest_node_share": max(per) / max(sum(per), 1e-9) if len(per) > 1 else 1.0}


class _Factory:
    """Picklable client factory (multiprocessing)."""

    def __init__(self, url: str, cluster: bool = False):
        self.url, self.cluster = url, cluster

    def __call__(self):
        if self.cluster:
            from redis.cluster import RedisCluster
            return RedisCluster.from_url(self.url, socket_timeout=2.0)
        return redis.Redis.from_url(self.url, socket_timeout=2.0)


def start_cluster(password: str, nodes: int = 3):
    """A 3-master Redis Cluster on loopback (no replicas); returns (procs, dir, ports)."""
    d = tempfile.mkdtemp(prefix="wm-cluster-")
    ports, procs = [_cluster_port() for _ in range(nodes)], []
    try:
        return _start_cluster(password, d, ports, procs)
    except Exception:
        for p in procs:
            p.kill()
            p.wait()
        shutil.rmtree(d, ignore_errors=True)
        raise


def _cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is a valid, free port too."""
    import socket
    while True:
        p = free_port()
        if p + 10000 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p + 10000))
                return p
            except OSError:
                continue


def _start_cluster(password, d, ports, procs):
    for p in ports:
        conf = os.path.join(d, "%d.conf" % p)
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("bind 127.0.0.1\nport %d\ncluster-enabled yes\ncluster-config-file "
                    "nodes-%d.conf\nrequirepass %s\nmasterauth %s\nsave \"\"\nappendonly no\n"
                    "dir %s\nloglevel warning\n" % (p, p, password, password, d))
        procs.append(subprocess.Popen(["redis-server", conf], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.STDOUT, start_new_session=True))
    time.sleep(0.5)
    env = dict(os.environ, REDISCLI_AUTH=password)  # not on the command line
    subprocess.run(["redis-cli", "--cluster", "create"] + ["127.0.0.1:%d" % p for p in ports]
                   + ["--cluster-replicas", "0", "--cluster-yes"], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, timeout=30)
    deadline = time.monotonic() + 20
    admin = redis.Redis(port=ports[0], password=password)
    while time.monotonic() < deadline and admin.cluster("info").get("cluster_state") != "ok":
        time.sleep(0.2)
    return procs, d, ports


def run(repeats: Optional[int] = None) -> List[dict]:
    seconds = 4.0 if repeats else 10.0
    sizes = (10, 100) if repeats else (10, 100, 1000)
    rows = []
    with RedisServer() as s:
        admin = [redis.Redis.from_url(s.url)]
        for n in sizes:
            r = run_fleet(n, _Factory(s.url), admin, seconds, workers=2 if n > 10 else 1,
                          fleet="bench%d" % n)
            rows.append(_rows("redis/%d robots" % n, n, r))
    password = RedisServer().password
    procs, d, ports = start_cluster(password)
    try:
        url = "redis://:%s@127.0.0.1:%d/0" % (password, ports[0])
        admin = [redis.Redis(port=p, password=password) for p in ports]
        r = run_fleet(100, _Factory(url, cluster=True), admin, seconds, workers=2,
                      fleet="bench100")
        rows.append(_rows("cluster3/100 robots (one fleet: one slot)", 100, r))
        r = run_fleet(100, _Factory(url, cluster=True), admin, seconds, workers=2,
                      fleet=",".join("zone%d" % k for k in range(6)))
        rows.append(_rows("cluster3/100 robots in 6 fleets (zones)", 100, r))
    finally:
        for p in procs:
            p.terminate()
            p.wait(5)
        shutil.rmtree(d, ignore_errors=True)
    return [x for pair in rows for x in pair]


def _rows(name: str, n: int, r: dict):
    need = n * RATE
    achieved = r["cycles"] / r["wall"]
    note = ("achieved %.0f of %.0f cycles/s (%.0f %%), %.1f Redis commands per robot-cycle, "
            "Redis CPU %.0f us per robot-cycle (%.2f s/s): one Redis core serves about %d "
            "robots at 10 Hz" % (achieved, need, 100.0 * achieved / need, r["cmds_per_cycle"],
                                 r["redis_cpu_us_per_cycle"], r["redis_cpu_per_s"],
                                 int(1e6 / max(r["redis_cpu_us_per_cycle"], 1e-9) / RATE)))
    if r["busiest_node_share"] < 1.0:
        note += "; busiest of the 3 nodes did %.0f %% of the server work" % (
            100.0 * r["busiest_node_share"])
    if r["errors"]:
        note += "; client errors: " + "; ".join(r["errors"])
    return (row(name + ": cycle (write + read)", r["cycle"], note=note),
            row(name + ": publish -> visible", r["latency"]))


NOTE = lambda r: r.get("note", "")  # noqa: E731


if __name__ == "__main__":
    main(run, __doc__)
