"""Delivery of large PointCloud2 clouds between two processes over Fast DDS, with and without
config/fastdds.xml.

    python benchmarks/bench_dds.py [--quick] [--seconds S] [--sizes 16x1024,64x1024]

For every cloud size (Ouster 48-byte points) a publisher process sends at 10 Hz with
SensorDataQoS (best effort, keep last 5) for N seconds to a subscriber process, once with the
Fast DDS defaults (FASTDDS_DEFAULT_PROFILES_FILE unset) and once with the shipped profile.
Reported per case: delivered % (unique samples received / sent), received rate in Hz over the
publishing window, and latency (receive wall time - header.stamp, same host clock): median and
p99 ms. Both roles run in their own process (Fast DDS loads the XML profile once per process),
every child has a timeout and is killed on exit; DDS traffic stays on localhost in a private
ROS_DOMAIN_ID (201-230, or --domain).

The module also runs as the publisher / subscriber itself (``--role pub|sub``); the system test
tests/test_dds_large_clouds.py starts it as its publisher. Role code stays Python 3.8-compatible.
"""
from __future__ import annotations

import argparse
import atexit
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parent.parent
PROFILE = REPO / "config" / "fastdds.xml"
PROFILE_ENV = "FASTDDS_DEFAULT_PROFILES_FILE"
# Variables that would change what "default" means; cleared in every child.
_CLEARED_ENV = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE",
                "RMW_FASTRTPS_USE_QOS_FROM_XML", "FASTDDS_BUILTIN_TRANSPORTS",
                "RMW_FASTRTPS_PUBLICATION_MODE")

SIZES = ((16, 1024), (64, 1024), (128, 2048))
RATE_HZ = 10.0
MATCH_TIMEOUT_S = 15.0


def case_name(rows: int, cols: int, tuned: bool) -> str:
    return "dds_cloud/%dx%d/%s" % (rows, cols, "tuned" if tuned else "default")


PEERS = {case_name(r, c, True): case_name(r, c, False) for r, c in SIZES}


# ---------------------------------------------------------------- roles (child processes)

def make_cloud(rows: int, cols: int):
    """An organized Ouster cloud (48-byte points) as sensor_msgs/PointCloud2."""
    import array

    import numpy as np
    from sensor_msgs.msg import PointCloud2, PointField
    from wm_common.point_layouts import OUSTER, pack_points

    n = rows * cols
    rng = np.random.default_rng(0)
    az = np.tile(np.linspace(0.0, 2.0 * np.pi, cols, endpoint=False), rows)
    rng_m = rng.uniform(1.0, 30.0, n).astype(np.float32)
    cols_data = {
        "x": rng_m * np.cos(az), "y": rng_m * np.sin(az),
        "z": np.repeat(np.linspace(-2.0, 2.0, rows), cols),
        "intensity": rng.uniform(0.0, 255.0, n),
        "t": np.tile(np.arange(cols, dtype=np.uint32) * (100_000_000 // cols), rows),
        "ring": np.repeat(np.arange(rows, dtype=np.uint16), cols),
        "range": (rng_m * 1000.0).astype(np.uint32),
    }
    msg = PointCloud2()
    msg.height, msg.width = rows, cols
    msg.fields = [PointField(name=f.name, offset=f.offset, datatype=f.datatype, count=f.count)
                  for f in OUSTER.fields]
    msg.is_bigendian = False
    msg.point_step = OUSTER.point_step
    msg.row_step = cols * OUSTER.point_step
    msg.is_dense = True
    # array('B') is taken by the generated setter and the C conversion as one buffer copy.
    msg.data = array.array("B", pack_points(OUSTER, cols_data, height=rows))
    return msg


def _emit(obj) -> None:
    sys.stdout.write("RESULT " + json.dumps(obj) + "\n")
    sys.stdout.flush()


def role_pub(topic: str, rows: int, cols: int, seconds: float, rate: float,
             match_timeout: float = MATCH_TIMEOUT_S) -> int:
    """Wait for a subscriber, publish at `rate` for `seconds`, print the sent count."""
    import rclpy
    from sensor_msgs.msg import PointCloud2
    from wm_common.ros.qos import SENSOR_QOS

    rclpy.init()
    node = rclpy.create_node("bench_dds_pub")
    pub = node.create_publisher(PointCloud2, topic, SENSOR_QOS)
    msg = make_cloud(rows, cols)
    msg.header.frame_id = "os_lidar"
    deadline = time.monotonic() + match_timeout
    while pub.get_subscription_count() < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    matched = pub.get_subscription_count() >= 1
    time.sleep(0.5)  # let the reader side finish matching (best effort drops early samples)
    sent, pub_ms = 0, []
    period = 1.0 / rate
    t0 = t_last = time.monotonic()
    t_next = t0
    end = t0 + seconds
    while matched and t_next < end:
        now = time.monotonic()
        if now < t_next:
            time.sleep(t_next - now)
        # seq in frame_id so the subscriber counts unique samples; stamp = send time.
        msg.header.frame_id = "os_lidar:%d" % sent
        msg.header.stamp = node.get_clock().now().to_msg()
        t1 = time.perf_counter()
        t_last = time.monotonic()
        pub.publish(msg)
        pub_ms.append((time.perf_counter() - t1) * 1e3)
        sent += 1
        t_next += period
        if time.monotonic() > t_next + period:  # fell behind: skip, do not burst
            t_next = time.monotonic()
    # The window the samples cover: first send to one period after the last one.
    elapsed = (t_last - t0) + period if sent else 0.0
    time.sleep(0.5)  # keep the writer alive while the last samples drain
    _emit({"sent": sent, "matched": matched, "elapsed_s": elapsed,
           "publish_ms": pub_ms, "bytes": len(msg.data)})
    node.destroy_node()
    rclpy.try_shutdown()
    return 0 if matched else 2


class Collector:
    """Records (receive wall time, stamp, seq) per PointCloud2 sample; usable in-process."""

    def __init__(self):
        self.samples = []  # (recv_s, stamp_s, seq, nbytes)

    def __call__(self, msg) -> None:
        recv = time.time()
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        try:
            seq = int(msg.header.frame_id.rsplit(":", 1)[1])
        except (IndexError, ValueError):
            seq = -1
        self.samples.append((recv, stamp, seq, len(msg.data)))

    def summary(self, sent: int, seconds: float) -> Dict[str, object]:
        return summarize(self.samples, sent, seconds)


def summarize(samples, sent: int, seconds: float) -> Dict[str, object]:
    seqs = {s[2] for s in samples if 0 <= s[2] < max(sent, 1)}
    lat = sorted((s[0] - s[1]) * 1e3 for s in samples)
    out = {"received": len(seqs), "sent": sent,
           "delivered_pct": 100.0 * len(seqs) / sent if sent else 0.0,
           "rate_hz": len(seqs) / seconds if seconds > 0 else 0.0,
           "latency_ms": lat}
    return out


def role_sub(topic: str, max_seconds: float, idle_s: float = 2.0) -> int:
    """Receive until `idle_s` without samples after the first one (or `max_seconds`)."""
    import rclpy
    import rclpy.signals
    from sensor_msgs.msg import PointCloud2
    from wm_common.ros.qos import SENSOR_QOS

    stop = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.append(1))
    rclpy.init(signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    node = rclpy.create_node("bench_dds_sub")
    got = Collector()
    node.create_subscription(PointCloud2, topic, got, SENSOR_QOS)
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    end = time.monotonic() + max_seconds
    last_n, last_t = 0, time.monotonic()
    while time.monotonic() < end and not stop:
        rclpy.spin_once(node, timeout_sec=0.05)
        if len(got.samples) != last_n:
            last_n, last_t = len(got.samples), time.monotonic()
        elif last_n and time.monotonic() - last_t > idle_s:
            break
    _emit({"samples": got.samples})
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


# ---------------------------------------------------------------- orchestration

_CHILDREN: List[subprocess.Popen] = []


def _kill_children() -> None:
    for p in list(_CHILDREN):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            p.wait()
        _CHILDREN.remove(p)


atexit.register(_kill_children)


def node_in_env(env: Dict[str, str], name: str):
    """(context, node): an rclpy node in this process that joins the children's DDS (their
    domain and Fast DDS profile), in its own context. rcl reads the domain at init, Fast DDS
    the profile at the first participant, so the environment is set just for that and put
    back. Ctrl-C stays a KeyboardInterrupt (the caller's cleanup runs), not rclpy's."""
    import rclpy
    from rclpy.context import Context
    from rclpy.signals import SignalHandlerOptions
    keys = ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "RMW_IMPLEMENTATION",
            PROFILE_ENV) + _CLEARED_ENV
    saved = {k: os.environ.get(k) for k in keys}
    try:
        for k in keys:
            if k in env:
                os.environ[k] = env[k]
            else:
                os.environ.pop(k, None)
        context = Context()
        rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
        return context, rclpy.create_node("%s_%d" % (name, os.getpid()), context=context)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def child_env(tuned: bool, domain: Optional[int] = None,
              profile: Path = PROFILE) -> Dict[str, str]:
    """os.environ with DDS isolated on localhost and the profile set (tuned) or not."""
    env = os.environ.copy()
    for k in _CLEARED_ENV:
        env.pop(k, None)
    if domain is not None:
        env["ROS_DOMAIN_ID"] = str(domain)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    if tuned:
        env[PROFILE_ENV] = str(profile)
    return env


def spawn(role_args: List[str], env: Dict[str, str]) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, str(Path(__file__).resolve())] + role_args,
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    _CHILDREN.append(p)
    return p


def finish(p: subprocess.Popen, timeout: float) -> Dict[str, object]:
    """Wait for a child (SIGKILL after `timeout`), return its RESULT json."""
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
    if p in _CHILDREN:
        _CHILDREN.remove(p)
    for line in reversed(out.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError("child %s gave no result (rc %s): %s" % (
        p.args[2:], p.returncode, err.strip()[-2000:]))


def _wait_ready(p: subprocess.Popen, timeout: float) -> None:
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sel.select(timeout=max(0.0, deadline - time.monotonic())):
            line = p.stdout.readline()
            if line.strip() == "READY" or not line:
                break
    sel.close()


def measure(rows: int, cols: int, tuned: bool, seconds: float, domain: int,
            rate: float = RATE_HZ) -> Dict[str, object]:
    topic = "/bench_dds/cloud_%dx%d_%s_%d" % (rows, cols, "t" if tuned else "d", os.getpid())
    env = child_env(tuned, domain)
    budget = MATCH_TIMEOUT_S + seconds + 20.0
    sub = spawn(["--role", "sub", "--topic", topic, "--max-seconds", str(budget)], env)
    try:
        _wait_ready(sub, 20.0)
        pub = spawn(["--role", "pub", "--topic", topic, "--rows", str(rows), "--cols",
                     str(cols), "--seconds", str(seconds), "--rate", str(rate)], env)
        p_res = finish(pub, budget + 10.0)
        time.sleep(1.0)  # samples still in flight
        if sub.poll() is None:
            sub.send_signal(signal.SIGTERM)
        s_res = finish(sub, 15.0)
    finally:
        _kill_children()
    from benchlib import row  # orchestrator only: the child roles do not need it

    res = summarize(s_res["samples"], int(p_res["sent"]), float(p_res["elapsed_s"]) or seconds)
    return row(case_name(rows, cols, tuned), res.pop("latency_ms"),
               delivered_pct=res["delivered_pct"], rate_hz=res["rate_hz"],
               sent=res["sent"], received=res["received"], mbytes=p_res["bytes"] / 1e6,
               publish_median_ms=row("publish", p_res["publish_ms"] or [0.0])["median_ms"])


def run(repeats: Optional[int] = None, seconds: Optional[float] = None,
        sizes=SIZES, domain: Optional[int] = None) -> List[Dict[str, object]]:
    """One row per (size, default|tuned). `repeats` (as passed by run_all --quick) shortens
    the window to 2 s; latency n is the number of received samples."""
    if seconds is None:
        seconds = 2.0 if repeats is not None and repeats <= 10 else 5.0
    if domain is None:
        domain = random.SystemRandom().randint(201, 230)
    rows = []
    for r, c in sizes:
        for tuned in (False, True):
            rows.append(measure(r, c, tuned, seconds, domain))
    return rows


def to_markdown(rows) -> str:
    lines = ["| case | MB | delivered % | rate Hz | latency median ms | latency p99 ms | n |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    lines += ["| %s | %.1f | %.0f | %.1f | %.1f | %.1f | %d |" % (
        r["name"], r["mbytes"], r["delivered_pct"], r["rate_hz"], r["median_ms"],
        r["p99_ms"], r["n"]) for r in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 s per case instead of 5 s")
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--sizes", default=None, help="e.g. 16x1024,128x2048")
    ap.add_argument("--domain", type=int, default=None, help="ROS_DOMAIN_ID (default 201-230)")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON too")
    # child roles
    ap.add_argument("--role", choices=("pub", "sub"), default=None, help=argparse.SUPPRESS)
    ap.add_argument("--topic", default="/bench_dds/cloud", help=argparse.SUPPRESS)
    ap.add_argument("--rows", type=int, default=64, help=argparse.SUPPRESS)
    ap.add_argument("--cols", type=int, default=1024, help=argparse.SUPPRESS)
    ap.add_argument("--rate", type=float, default=RATE_HZ, help=argparse.SUPPRESS)
    ap.add_argument("--max-seconds", type=float, default=60.0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.role == "pub":
        return role_pub(args.topic, args.rows, args.cols, args.seconds or 5.0, args.rate)
    if args.role == "sub":
        return role_sub(args.topic, args.max_seconds)
    sizes = SIZES
    if args.sizes:
        sizes = tuple(tuple(int(v) for v in s.split("x")) for s in args.sizes.split(","))
    seconds = args.seconds if args.seconds else (2.0 if args.quick else 5.0)
    rows = run(seconds=seconds, sizes=sizes, domain=args.domain)
    print(to_markdown(rows))
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
