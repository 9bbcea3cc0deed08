"""The Jetson deployment files (jetson/) as far as they can be checked without a Jetson.

Nothing here proves that the image builds or that the stack runs on a Xavier: Docker, a Jetson,
CUDA and TensorRT are absent from this machine (jetson/README.md lists what has never run). What
is checked:
  * jetson/Dockerfile passes hadolint with no finding at all (info level included);
  * every shell script under jetson/ passes shellcheck with no finding; scripts/ is held to its
    known findings (see test_shellcheck_scripts_dir);
  * the systemd units pass `systemd-analyze verify` (on copies whose /opt/wm/jetson/ paths point
    at this checkout, see test_systemd_units_verify), use only directives systemd 245 (Ubuntu
    20.04 / L4T R35) knows, keep their hardening, and pass only launch arguments that
    launch/robot.launch.py declares;
  * the scripts fail clearly here: power_mode.sh without nvpmodel, build_engine.sh without
    TensorRT, check_install.py on a machine that is not the robot; their logic is exercised with
    stand-ins (a fake nvpmodel, a fake engine-build module) where the real tool is missing;
  * the healthcheck against a real lifecycle node over DDS;
  * consistency: pip pins vs requirements.lock, robot imports vs what the image installs.
The tools are installed by `make test`'s set-up (hadolint from requirements.lock, shellcheck by
apt); systemd-analyze comes with systemd. A missing tool fails the test, never skips it.
"""
from __future__ import annotations

import ast
import json
import os
import re
import shutil
import stat
import sys
from pathlib import Path

from checkers import run, tool  # noqa: E402  (tests/checkers.py)
import yaml

REPO = Path(__file__).resolve().parent.parent
JETSON = REPO / "jetson"
UNITS = [JETSON / "wm-robot.service", JETSON / "wm-robot-docker.service"]
LAUNCH = REPO / "launch" / "robot.launch.py"
SCRIPTS = sorted(JETSON.glob("*.sh"))
INSTALL_PREFIX = "/opt/wm/jetson/"   # where the units expect the repository's jetson/ folder


def load_check_install():
    import importlib.util
    spec = importlib.util.spec_from_file_location("check_install", JETSON / "check_install.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def unit_entries(path: Path):
    """[(section, key, value)] of a unit file (continuation lines are not used in ours)."""
    section, out = None, []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        assert not line.endswith("\\"), "%s: continuation lines are not expected" % path
        key, _, value = line.partition("=")
        out.append((section, key.strip(), value.strip()))
    return out


def launch_arguments():
    """DeclareLaunchArgument names and LifecycleNode names of launch/robot.launch.py."""
    tree = ast.parse(LAUNCH.read_text())
    declared, lifecycle = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id == "DeclareLaunchArgument":
                declared.add(node.args[0].value)
            elif node.func.id == "LifecycleNode":
                kw = {k.arg: k.value for k in node.keywords}
                lifecycle.append(kw["name"].value)
    return declared, lifecycle


# --- Dockerfile -----------------------------------------------------------------------------------

def test_hadolint_dockerfile_has_no_finding():
    hadolint = tool("hadolint")
    r = run([hadolint, "--no-color", JETSON / "Dockerfile"])
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), r.stdout + r.stderr


def test_hadolint_does_report_findings(tmp_path):
    """The checker itself works: a Dockerfile with known problems is reported."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu:latest\nRUN apt-get install curl\n")
    r = run([tool("hadolint"), "--no-color", bad])
    assert r.returncode != 0 and "DL3007" in r.stdout and "DL3008" in r.stdout, r.stdout


def test_dockerfile_is_consistent_with_the_repository():
    text = (JETSON / "Dockerfile").read_text()
    base = re.search(r"^ARG BASE_IMAGE=(\S+)$", text, re.M).group(1)
    assert ":" in base and not base.endswith(":latest"), base
    assert "l4t-r35" in base, "JetPack 5 / L4T R35 base expected: %s" % base
    for src in re.findall(r"^COPY (?:--\S+ )*(\S+) \S+$", text, re.M):
        assert (REPO / src).exists(), "COPY source missing: %s" % src
    assert "-r /opt/wm/jetson/requirements-jetson.txt" in text
    # the entrypoint, healthcheck and build-time check are this folder's files, executable
    for rel in re.findall(r"/opt/wm/jetson/([\w.\-]+)", text):
        assert (JETSON / rel).is_file(), rel
    for script in ("ros_entrypoint.sh",):
        assert os.access(JETSON / script, os.X_OK), script
    assert "check_install.py" in text and "HEALTHCHECK" in text and "healthcheck.py" in text
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users and users[-1] not in ("root", "0", "0:0"), users
    # the same Fast DDS profile as the plain unit, under Humble's variable name, in the Fast DDS
    # 2.x syntax (Humble's 2.6 drops config/fastdds.xml whole: heartbeat_period is 3.x's name)
    assert "FASTRTPS_DEFAULT_PROFILES_FILE=/opt/wm/config/fastdds_humble.xml" in text
    assert "Environment=FASTRTPS_DEFAULT_PROFILES_FILE=/opt/wm/config/fastdds_humble.xml" in (
        JETSON / "wm-robot.service").read_text()
    assert (REPO / "config" / "fastdds_humble.xml").is_file()


# --- shell scripts --------------------------------------------------------------------------------

def test_shellcheck_jetson_scripts_have_no_finding():
    assert {p.name for p in SCRIPTS} >= {"build_engine.sh", "power_mode.sh", "ros_entrypoint.sh"}
    r = run([tool("shellcheck"), "--severity=style", "--external-sources", *SCRIPTS])
    assert r.returncode == 0 and not r.stdout.strip(), r.stdout + r.stderr


def test_jetson_scripts_are_strict_executable_and_have_usage():
    for script in SCRIPTS:
        text = script.read_text()
        assert text.startswith("#!/usr/bin/env bash\n"), script
        assert "\nset -euo pipefail\n" in text, script
        assert os.stat(script).st_mode & stat.S_IXUSR, "%s is not executable" % script
        r = run([script, "--help"], timeout=30)
        assert r.returncode == 0 and "usage:" in r.stdout, (script, r.stdout, r.stderr)
        if script.name != "ros_entrypoint.sh":   # its first argument is the command to run
            r = run([script, "--no-such-option"], timeout=30)
            assert r.returncode == 2 and "unknown argument" in r.stderr, (script, r.stderr)


def test_shellcheck_scripts_dir():
    """Every shell script under scripts/ (*.sh and files with a bash shebang) is shellchecked
    without a finding."""
    files = sorted(p for p in (REPO / "scripts").iterdir() if p.is_file() and (
        p.suffix == ".sh" or p.read_text(errors="replace").startswith("#!/usr/bin/env bash")))
    assert any(p.name == "setup.sh" for p in files)
    r = run([tool("shellcheck"), "--format=json1", "--external-sources", *files])
    found = {(str(Path(c["file"]).resolve().relative_to(REPO)), c["code"])
             for c in json.loads(r.stdout)["comments"]}
    assert not found, sorted(found)


# --- systemd units --------------------------------------------------------------------------------

def verifiable_copy(unit: Path, dest: Path) -> Path:
    """A copy of `unit` that can be verified here: /opt/wm/jetson/X -> this checkout's jetson/X
    (the same files the robot installs there) and /usr/bin/docker -> /bin/true (Docker is not
    installed here). Nothing else changes."""
    text = unit.read_text()
    commands = " ".join(v for s, k, v in unit_entries(unit) if k.startswith("Exec"))
    for rel in re.findall(re.escape(INSTALL_PREFIX) + r"([\w.\-]+)", commands):
        assert os.access(JETSON / rel, os.X_OK), "%s runs %s, which is not executable" % (unit, rel)
    out = dest / unit.name
    out.write_text(text.replace(INSTALL_PREFIX, str(JETSON) + "/")
                   .replace("/usr/bin/docker", "/bin/true"))
    return out


def analyze_env(tmp_path: Path) -> dict:
    """SYSTEMD_UNIT_PATH with a stand-in docker.service (Requires= of the Docker unit) first,
    then systemd's own search path (the trailing ':')."""
    (tmp_path / "docker.service").write_text(
        "[Unit]\nDescription=stand-in for the Docker daemon\n[Service]\nExecStart=/bin/true\n")
    return dict(os.environ, SYSTEMD_UNIT_PATH="%s:" % tmp_path)


def test_systemd_units_verify(tmp_path):
    """`systemd-analyze verify` prints nothing and exits 0 for each unit. It checks keys, values
    and that the executables exist; on the original files it would only report that
    /opt/wm/jetson/*.sh and /usr/bin/docker are missing on this machine, so it runs on
    verifiable_copy(). It does not check that the user wm exists (it is not created here)."""
    analyze = tool("systemd-analyze")
    env = analyze_env(tmp_path)
    for unit in UNITS:
        r = run([analyze, "verify", verifiable_copy(unit, tmp_path)], env=env)
        assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), (unit, r.stdout, r.stderr)
    # and it does report problems: a misspelt key
    broken = tmp_path / "broken.service"
    broken.write_text(verifiable_copy(UNITS[0], tmp_path).read_text()
                      .replace("NoNewPrivileges=", "NoNewPrivilege="))
    r = run([analyze, "verify", broken], env=env)
    assert "Unknown key" in r.stdout + r.stderr, r.stdout + r.stderr


def test_plain_unit_keeps_its_hardening(tmp_path):
    """`systemd-analyze security --offline` scores the plain unit 3.5 here (0 = locked down,
    10 = none); above 4.0 means hardening was dropped. What it still lacks is explained in the
    unit (the GPU needs device access, DDS and Redis the network)."""
    r = run([tool("systemd-analyze"), "security", "--offline=true", "--threshold=40",
             verifiable_copy(UNITS[0], tmp_path)], env=analyze_env(tmp_path))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr


# Every directive the units use, with the systemd release that introduced it (systemd.exec(5),
# systemd.service(5), systemd.unit(5) "Added in version"); L4T R35 / Ubuntu 20.04 has 245.
SYSTEMD_DIRECTIVE_SINCE = {
    "Description": 1, "Documentation": 1, "Wants": 1, "Requires": 1, "After": 1,
    "StartLimitIntervalSec": 230, "StartLimitBurst": 230, "WantedBy": 1,
    "Type": 240,  # Type=exec
    "User": 1, "Group": 1, "SupplementaryGroups": 1, "Environment": 1, "EnvironmentFile": 1,
    "ExecStartPre": 231,  # the '+' prefix
    "ExecStart": 1, "ExecStop": 1, "KillSignal": 1, "KillMode": 1, "TimeoutStopSec": 188,
    "Restart": 1, "RestartSec": 1, "StateDirectory": 235, "LogsDirectory": 235,
    "WorkingDirectory": 1, "UMask": 1, "NoNewPrivileges": 187, "CapabilityBoundingSet": 1,
    "AmbientCapabilities": 229, "ProtectSystem": 232,  # =strict
    "ProtectHome": 214, "PrivateTmp": 1, "ProtectKernelTunables": 232,
    "ProtectKernelModules": 232, "ProtectKernelLogs": 244, "ProtectControlGroups": 232,
    "ProtectHostname": 242, "RestrictSUIDSGID": 242, "RestrictRealtime": 231,
    "RestrictNamespaces": 233, "LockPersonality": 235, "PrivateMounts": 239,
    "SystemCallArchitectures": 209, "RemoveIPC": 232, "RestrictAddressFamilies": 211,
}
# Must never appear: they cut the GPU off (device allow-lists, private /dev) or break CUDA/JIT.
GPU_BREAKING = {"PrivateDevices", "DevicePolicy", "DeviceAllow", "ProtectClock",
                "MemoryDenyWriteExecute"}


def test_units_use_only_directives_of_systemd_245():
    for unit in UNITS:
        for _, key, _value in unit_entries(unit):
            assert key not in GPU_BREAKING, "%s: %s would cut the GPU off" % (unit.name, key)
            assert key in SYSTEMD_DIRECTIVE_SINCE, "%s: %s: add it with its systemd version" % (
                unit.name, key)
            assert SYSTEMD_DIRECTIVE_SINCE[key] <= 245, (unit.name, key)


def test_units_launch_only_declared_arguments():
    declared, _ = launch_arguments()
    assert {"namespace", "params_file", "world_model", "redis_url"} <= declared
    for unit in UNITS:
        starts = [v for s, k, v in unit_entries(unit) if k == "ExecStart"]
        assert len(starts) == 1, unit
        words = starts[0].split()
        i = words.index("robot.launch.py")
        assert words[i - 2:i] == ["launch", "wm_bringup"], words
        args = dict(w.split(":=", 1) for w in words[i + 1:])
        assert set(args) <= declared, (unit.name, set(args) - declared)
        assert {"namespace", "params_file", "world_model"} <= set(args), unit.name
        # redis_url is left to its default '' so the fleet client reads WM_REDIS_URL
        assert "redis_url" not in args
    assert 'os.environ.get("WM_REDIS_URL"' in (
        REPO / "src/wm_fleet/wm_fleet/fleet_node.py").read_text()
    assert (REPO / "src/wm_bringup/launch").resolve() == (REPO / "launch").resolve()


def env_example():
    keys = {}
    for line in (JETSON / "robot.env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", key), line
            assert not value.startswith(("'", '"')) and "export " not in line, line
            keys[key] = value
    return keys


def test_unit_variables_and_secrets():
    """Every ${VAR} of a unit is set by the unit or by the environment file; neither holds a
    password (the fleet client reads its own password_file)."""
    env = env_example()
    assert {"WM_ROBOT_ID", "WM_NAMESPACE", "WM_PARAMS_FILE", "WM_WORLD_MODEL", "WM_REDIS_URL",
            "ROS_DOMAIN_ID"} <= set(env)
    assert "@" not in env["WM_REDIS_URL"], "no credentials in the URL"
    assert not any("PASSWORD" in k for k in env)
    for unit in UNITS:
        entries = unit_entries(unit)
        own = {v.split("=", 1)[0] for s, k, v in entries if k == "Environment"}
        assert ("Service", "EnvironmentFile", "/etc/wm/robot.env") in entries, unit.name
        for _s, k, v in entries:
            for var in re.findall(r"\$\{(\w+)\}", v):
                assert var in own or var in env, "%s: ${%s} is set nowhere" % (unit.name, var)
            assert "password" not in (k + v).lower(), (unit.name, k)
        assert "password_file" in unit.read_text()   # the comment telling where it goes
    fleet_params = (REPO / "src/wm_fleet/wm_fleet/params.py").read_text()
    assert 'Param("password_file"' in fleet_params
    # the shipped world model the units default to exists and matches the launch default
    for unit in UNITS:
        assert "Environment=WM_WORLD_MODEL=worldmodel-1.0.0" in unit.read_text()
    assert 'default_value="worldmodel-1.0.0"' in LAUNCH.read_text()
    assert (REPO / "src/wm_world_model/models/worldmodel-1.0.0/model.onnx").is_file()


# --- power_mode.sh --------------------------------------------------------------------------------

def test_power_mode_check_fails_clearly_without_nvpmodel():
    path = "/usr/bin:/bin"
    assert shutil.which("nvpmodel", path=path) is None, "this machine has nvpmodel"
    r = run([JETSON / "power_mode.sh", "--check"], env=dict(os.environ, PATH=path), timeout=30)
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    assert "nvpmodel not found" in r.stderr and "not a Jetson" in r.stderr, r.stderr


def fake_jetson_tools(tmp_path: Path, mode: int) -> dict:
    """nvpmodel / jetson_clocks stand-ins that log their calls; nvpmodel -q prints the
    JetPack 5 format ("NV Power Mode: NAME" then the ID)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (tmp_path / "mode").write_text("%d\n" % mode)
    (bindir / "nvpmodel").write_text(
        '#!/bin/bash\nstate="%s/mode"\n' % tmp_path
        + 'echo "nvpmodel $*" >> "%s/calls"\n' % tmp_path
        + 'case "$1" in\n'
        '  -q) m="$(cat "$state")"; [ "$m" = 0 ] && echo "NV Power Mode: MAXN" '
        '|| echo "NV Power Mode: MODE_$m"; echo "$m" ;;\n'
        '  -m) echo "$2" > "$state" ;;\n'
        '  *) exit 1 ;;\n'
        'esac\n')
    (bindir / "jetson_clocks").write_text(
        '#!/bin/bash\necho "jetson_clocks $*" >> "%s/calls"\n' % tmp_path)
    for f in bindir.iterdir():
        f.chmod(0o755)
    return dict(os.environ, PATH="%s:/usr/bin:/bin" % bindir)


def test_power_mode_with_stand_in_tools(tmp_path):
    env = fake_jetson_tools(tmp_path, mode=2)
    script = JETSON / "power_mode.sh"
    r = run([script, "--check"], env=env, timeout=30)
    assert r.returncode == 1 and "mode 2" in r.stdout and "not the wanted mode 0" in r.stderr
    assert run([script, "--check", "--mode", "2"], env=env, timeout=30).returncode == 0
    assert run([script, "--mode", "x"], env=env, timeout=30).returncode == 2
    r = run([script], env=env, timeout=30)
    if os.geteuid() != 0:
        assert r.returncode == 4 and "needs root" in r.stderr, r.stderr
        return
    assert r.returncode == 0, r.stdout + r.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert "nvpmodel -m 0" in calls and "jetson_clocks " in calls, calls
    assert run([script, "--check"], env=env, timeout=30).returncode == 0   # now MAXN


# --- build_engine.sh ------------------------------------------------------------------------------

def planner_num_samples() -> int:
    doc = yaml.safe_load((REPO / "config" / "robot.yaml").read_text())
    return doc["/**/planner"]["ros__parameters"]["num_samples"]


def test_build_engine_fails_clearly_without_tensorrt(tmp_path):
    """The real path: wm_world_model.tensorrt_engine is called and reports that tensorrt is
    missing; the script exits 3 with a clear message and leaves nothing behind."""
    r = run([JETSON / "build_engine.sh", "--out-dir", tmp_path], timeout=180)
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    assert "TensorRT or CUDA is not available" in r.stderr, r.stderr
    assert "batch:     %d" % planner_num_samples() in r.stdout, r.stdout
    assert "worldmodel-1.0.0" in r.stdout
    assert list(tmp_path.iterdir()) == [], "temporary files left behind"


FAKE_MODULE = """#!/bin/bash
# stand-in for python3: intercepts `-m wm_world_model.tensorrt_engine`, runs anything else
if [ "$1" = "-m" ] && [ "$2" = "wm_world_model.tensorrt_engine" ]; then
  echo "$*" > "{log}"
  shift 2
  while [ $# -gt 0 ]; do [ "$1" = "--out" ] && out="$2"; shift; done
  printf 'fake-engine' > "$out"
  cat "{report}"
  exit 0
fi
exec "{python}" "$@"
"""


def fake_build(tmp_path: Path, pos: float, yaw: float, *args):
    tmp_path.mkdir()
    report = tmp_path / "report.json"
    report.write_text(json.dumps({
        "artifact": "1.0.0", "batch": 512, "gpu": "stand-in",
        "max_abs_diff_position_m": pos, "max_abs_diff_yaw_rad": yaw,
        "torchscript_cuda": {"median_ms": 2.0, "p99_ms": 3.0},
        "tensorrt": {"median_ms": 0.5, "p99_ms": 0.8}}))
    py = tmp_path / "python3"
    py.write_text(FAKE_MODULE.format(log=tmp_path / "module_args", report=report,
                                     python=sys.executable))
    py.chmod(0o755)
    out = tmp_path / "engines"
    r = run([JETSON / "build_engine.sh", "--out-dir", out, *args],
            env=dict(os.environ, PYTHON=str(py)), timeout=180)
    return r, out


def test_build_engine_keeps_a_matching_engine_and_discards_a_mismatch(tmp_path):
    """The script's own logic, with the module replaced by a stand-in that writes an engine and
    prints a report: within tolerance -> exit 0, engine + report kept, timings printed; out of
    tolerance or NaN -> exit 4, no engine, the report kept as .rejected.json."""
    n = planner_num_samples()
    r, out = fake_build(tmp_path / "a", 0.002, 0.004)
    assert r.returncode == 0, r.stdout + r.stderr
    engine = out / ("worldmodel-1.0.0.b%d.fp16.plan" % n)
    assert engine.read_bytes() == b"fake-engine"
    assert json.loads((out / ("worldmodel-1.0.0.b%d.fp16.check.json" % n)).read_text())
    assert "TensorRT:           median 0.500 ms" in r.stdout and "4.00x" in r.stdout
    args = (tmp_path / "a" / "module_args").read_text().split()
    assert args[args.index("--batch") + 1] == str(n) and "--check" in args
    assert args[args.index("--artifact") + 1].endswith("/models/worldmodel-1.0.0")
    assert "--fp32" not in args

    for case, pos, yaw in (("b", 0.5, 0.004), ("c", float("nan"), 0.0)):
        r, out = fake_build(tmp_path / case, pos, yaw)
        assert r.returncode == 4, (case, r.stdout, r.stderr)
        assert "disagree" in r.stderr and "MISMATCH" in r.stdout
        assert sorted(p.name for p in out.iterdir()) == [
            "worldmodel-1.0.0.b%d.fp16.rejected.json" % n], case

    r, out = fake_build(tmp_path / "d", 0.0005, 0.0005, "--fp32", "--batch", "64")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (out / "worldmodel-1.0.0.b64.fp32.plan").is_file()
    assert "--fp32" in (tmp_path / "d" / "module_args").read_text().split()


def test_build_engine_usage_errors(tmp_path):
    for args in (["--batch", "0"], ["--max-pos-diff", "-1"], ["--params", tmp_path / "nope"]):
        r = run([JETSON / "build_engine.sh", "--out-dir", tmp_path, *args], timeout=120)
        assert r.returncode == 2 and "build_engine.sh:" in r.stderr, (args, r.stderr)


# --- ros_entrypoint.sh, check_install.py, healthcheck.py ------------------------------------------

def test_entrypoint_sources_both_setups_and_refuses_empty_launch_arguments(tmp_path):
    ros, ws = tmp_path / "ros.bash", tmp_path / "ws.bash"
    ros.write_text("export WM_T_ROS=ros\n")
    ws.write_text('export WM_T_WS="ws after $WM_T_ROS"\n')
    env = dict(os.environ, WM_ROS_SETUP=str(ros), WM_WS_SETUP=str(ws))
    script = JETSON / "ros_entrypoint.sh"
    r = run([script, "bash", "-c", 'echo "$WM_T_WS"'], env=env, timeout=30)
    assert r.returncode == 0 and r.stdout.strip() == "ws after ros", r.stdout + r.stderr
    r = run([script, "ros2", "launch", "wm_bringup", "robot.launch.py", "namespace:="],
            env=env, timeout=30)
    assert r.returncode == 2 and "launch argument 'namespace' is empty" in r.stderr, r.stderr
    r = run([script, "true"], env=dict(env, WM_WS_SETUP=str(tmp_path / "missing")), timeout=30)
    assert r.returncode == 3 and "workspace not built" in r.stderr, r.stderr
    assert run([script], env=env, timeout=30).returncode == 2


def test_check_install_reports_what_this_machine_lacks():
    """Here (x86, CPU torch, no TensorRT, no launch_ros) the check fails and names the missing
    pieces; the workspace built by `make test` is found."""
    mod = load_check_install()
    r = run([sys.executable, JETSON / "check_install.py"], timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert re.search(r"^MISSING +tensorrt: import fails", r.stdout, re.M), r.stdout
    assert {"wm_msgs", "wm_planner", "wm_bringup"} <= set(mod.workspace_packages())
    for pkg in mod.workspace_packages():
        assert re.search(r"^ok +ros package %s: " % pkg, r.stdout, re.M), (pkg, r.stdout)
    assert re.search(r"^ok +world-model artifact worldmodel-1.0.0", r.stdout, re.M)
    assert r.stdout.rstrip().splitlines()[-1].startswith("FAILED:")


# Third-party modules robot code imports that the image does not install, and why that is fine.
NOT_INSTALLED = {
    "matplotlib": "plots of offline tools (evaluate, inspect_cloud); no node imports it",
    "rosbags": "offline bag tools (wm_perception.tools.replay); robots record with ros2 bag",
    "open3d": "optional outlier backend; wm_perception.pipeline falls back to scipy",
    "spconv": "optional sparse backend; the encoder's dense backend reproduces it (Xavier)",
    "distributed": "make sweep (wm_eval.sweep, Dask): offline scenario sweeps",
}
FROM_BASE_IMAGE = {"torch", "tensorrt"}   # NVIDIA's JetPack builds, never from PyPI
SIMULATOR_PACKAGES = {"wm_sim", "wm_gazebo"}   # built in the image, never started on a robot
# Fleet-level, never on a robot: the world-model service has its own images (deploy/service/,
# checked by tests/test_service_deploy.py).
OFF_ROBOT_PACKAGES = {"wm_service"}


def test_image_provides_every_module_robot_code_imports():
    """Every import in the robot's packages (every src/<pkg>/<pkg>/ but the simulator's, tests
    excluded) is the standard library, the workspace, a ROS package that
    check_install.py requires, a pip package of requirements-jetson.txt, torch/tensorrt from
    the base image, or listed in NOT_INSTALLED with its reason."""
    assert sys.version_info >= (3, 10), "needs sys.stdlib_module_names"
    mod = load_check_install()
    pip_modules = {mod.MODULES[d] for d, _ in mod.pinned_requirements()}
    assert set(mod.MODULES) == {d for d, _ in mod.pinned_requirements()}
    unaccounted = {}
    robot_packages = set(mod.workspace_packages()) - SIMULATOR_PACKAGES - OFF_ROBOT_PACKAGES
    assert {"wm_planner", "wm_perception", "wm_fleet", "wm_safety"} <= robot_packages
    for pkg in sorted(robot_packages):
        for f in (REPO / "src" / pkg / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(f.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                for top in (n.split(".")[0] for n in names):
                    if (top in sys.stdlib_module_names or top.startswith("wm_")
                            or top in mod.ROS_PACKAGES or top in pip_modules
                            or top in FROM_BASE_IMAGE or top in NOT_INSTALLED):
                        continue
                    unaccounted.setdefault(top, []).append(str(f.relative_to(REPO)))
    assert not unaccounted, ("imports the robot image does not provide (add to "
                             "jetson/requirements-jetson.txt or check_install.ROS_PACKAGES, or "
                             "explain in NOT_INSTALLED): %s" % unaccounted)
    launch_text = LAUNCH.read_text()
    for ros_pkg in ("launch", "launch_ros"):
        assert "from %s." % ros_pkg in launch_text and ros_pkg in mod.ROS_PACKAGES


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_requirements_pins_agree_with_the_lock():
    """A pin equal to requirements.lock needs nothing; a different one must say why in a comment
    that starts 'lock <the lock's version>:', so a lock change forces a second look here."""
    lock = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            lock[normalize(name)] = version.strip()
    mod = load_check_install()
    lines = [line for line in (JETSON / "requirements-jetson.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    pins = mod.pinned_requirements()
    assert len(pins) == len(lines) and {normalize(d) for d, _ in pins} >= {
        "numpy", "scipy", "pyyaml", "redis", "cryptography", "prometheus-client", "mcap",
        "casadi"}
    for (dist, version), line in zip(pins, lines):
        comment = line.split("#", 1)[1].strip() if "#" in line else ""
        locked = lock.get(normalize(dist))
        if locked is None or locked == version:
            continue
        assert comment.startswith("lock %s:" % locked), (
            "%s==%s differs from requirements.lock (%s): explain it as '# lock %s: why'"
            % (dist, version, locked, locked))
    assert dict((normalize(d), v) for d, v in pins)["redis"] == lock["redis"] == "6.1.0"
    assert not any(normalize(d) in ("torch", "tensorrt", "torch-tensorrt") for d, _ in pins)


def test_jetson_python_files_are_python38_and_lint_clean():
    files = sorted(JETSON.glob("*.py"))
    assert {f.name for f in files} >= {"check_install.py", "healthcheck.py"}
    r = run([tool("vermin"), "--target=3.8-", "--violations", "--no-tips", *files], timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    r = run([tool("ruff"), "check", *files], timeout=120, cwd=REPO)
    assert r.returncode == 0, r.stdout + r.stderr


def test_healthcheck_names_the_launch_files_lifecycle_nodes():
    _, lifecycle = launch_arguments()
    tree = ast.parse((JETSON / "healthcheck.py").read_text())
    nodes = next(n.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
                 and getattr(n.targets[0], "id", "") == "NODES")
    assert sorted(ast.literal_eval(nodes)) == sorted(lifecycle)


def test_healthcheck_against_a_real_lifecycle_node(procs):
    """perception (autostart) in its own namespace: healthy when asked about it alone,
    unhealthy (and naming the node) when a node that is not running is asked about too."""
    ns = "jetson_hc_%d" % os.getpid()
    procs.start("wm_perception", "perception", "--params-file",
                str(REPO / "config" / "robot.yaml"), "-r", "__ns:=/" + ns)
    script = [sys.executable, JETSON / "healthcheck.py", "--namespace", ns]
    r = run(script + ["--nodes", "perception", "--timeout", "30"], timeout=90)
    assert r.returncode == 0 and "healthy: /%s perception active" % ns in r.stdout, (
        r.stdout + r.stderr)
    r = run(script + ["--nodes", "perception,planner", "--timeout", "15"], timeout=60)
    assert r.returncode == 1 and "/%s/planner: no get_state service" % ns in r.stdout, (
        r.stdout + r.stderr)
    assert "/%s/perception" % ns not in r.stdout
    r = run([sys.executable, JETSON / "healthcheck.py"],
            env=dict(os.environ, WM_ROBOT_ID="", WM_NAMESPACE=""), timeout=60)
    assert r.returncode == 2 and "no namespace" in r.stderr
