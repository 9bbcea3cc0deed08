"""Fleet roll-out (deploy/): the inventory generator, the Ansible playbook's syntax and lint, and
real runs of the playbook against localhost (ansible_connection=local) that install into a
temporary directory standing for each robot's root, with the systemd steps off.

    scripts/with_env python -m pytest -q tests/test_rollout.py

Missing tools (ansible-playbook, ansible-lint from .venv) fail these tests; nothing is skipped.
Every Ansible run keeps its state (ANSIBLE_HOME, local and remote temp, caches) under tmp_path.
"""
from __future__ import annotations

import copy
import grp
import hashlib
import importlib.util
import json
import os
import pwd
import re
import secrets
import shutil
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest
from checkers import tool  # noqa: E402  (tests/checkers.py)
import yaml

from wm_common.params import check_value, flatten

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
ANSIBLE_DIR = DEPLOY / "ansible"
EXAMPLE = DEPLOY / "inventory.example.yaml"
SHIPPED = REPO / "src" / "wm_world_model" / "models" / "worldmodel-1.0.0"


def _load_generator():
    spec = importlib.util.spec_from_file_location("wm_deploy_generate", DEPLOY / "generate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


gen = _load_generator()
SPECS = gen.NODE_SPECS     # the nodes' own declarations (wm_*.params)


def ansible_env(base: Path) -> dict:
    env = os.environ.copy()
    for k in ("ANSIBLE_HOME", "ANSIBLE_LOCAL_TEMP", "ANSIBLE_REMOTE_TEMP", "XDG_CACHE_HOME"):
        (base / k.lower()).mkdir(parents=True, exist_ok=True)
        env[k] = str(base / k.lower())
    env.update(ANSIBLE_CONFIG=str(ANSIBLE_DIR / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0", NO_COLOR="1", PY_COLORS="0",
               ANSIBLE_COLLECTIONS_PATH=str(base / "ansible_home" / "collections"))
    return env


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def example() -> dict:
    return yaml.safe_load(EXAMPLE.read_text())


def params_of(gen_dir: Path, rid: str) -> dict:
    doc = yaml.safe_load((gen_dir / "robots" / rid / "robot.yaml").read_text())
    return {k[len("/**/"):]: flatten(v["ros__parameters"]) for k, v in doc.items()}


def env_of(gen_dir: Path, rid: str) -> dict:
    lines = (gen_dir / "robots" / rid / "robot.env").read_text().splitlines()
    return dict(ln.split("=", 1) for ln in lines if ln and not ln.startswith("#"))


# -- generator --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("generated")
    gen.generate(str(EXAMPLE), str(out))
    return out


def test_generator_writes_inventory_params_and_env(generated):
    files = sorted(str(p.relative_to(generated)) for p in generated.rglob("*") if p.is_file())
    robots = ["robot1", "robot2", "robot3"]
    assert files == sorted([".wm-generated", "hosts.yml"]
                           + ["host_vars/%s.yml" % r for r in robots]
                           + ["robots/%s/robot.yaml" % r for r in robots]
                           + ["robots/%s/robot.env" % r for r in robots])
    hosts = yaml.safe_load((generated / "hosts.yml").read_text())
    group = hosts["all"]["children"]["wm_robots"]
    assert list(group["hosts"]) == robots  # inventory order: robot1 is the canary
    gvars = group["vars"]
    assert gvars["wm_model_version"] == "1.0.0"
    assert gvars["wm_model_metadata_sha256"] == sha256(SHIPPED / "metadata.json")
    assert gvars["wm_install_method"] == "docker"
    assert gvars["wm_redis_password_file"] == "/etc/wm/secrets/redis_password"
    hv = yaml.safe_load((generated / "host_vars" / "robot3.yml").read_text())
    assert hv["ansible_host"] == "wm-robot3.fleet.example.com"
    assert hv["wm_namespace"] == "/robot3" and hv["wm_payload_class"] == "pallet"

    base = yaml.safe_load((REPO / "config" / "robot.yaml").read_text())
    p1, p3 = params_of(generated, "robot1"), params_of(generated, "robot3")
    fc = p3["fleet_client"]
    assert (fc["fleet"], fc["priority"], fc["username"]) == ("warehouse_a", 5, "wm_robot")
    assert fc["redis_url"] == "rediss://redis.fleet.example.com:6380/0"
    assert fc["password_file"] == "/etc/wm/secrets/redis_password"
    assert fc["tls_key_file"] == "/etc/wm/tls/robot.key"
    assert fc["model_version"] == "worldmodel-1.0.0"
    assert fc["passing_places"] == "4.0,2.0;12.0,2.0"           # fleet-wide params
    assert p3["planner"]["a_max"] == 0.6                         # payload class pallet
    assert p3["planner"]["v_max"] == 0.4                         # the robot's own override
    assert p3["planner"]["goal.weight"] == 5.0 and p3["perception"]["deskew"] is True
    assert p1["planner"]["v_max"] == base["/**/planner"]["ros__parameters"]["v_max"]
    assert p1["fleet_client"]["priority"] == 10
    assert p1["planner"]["world_model_artifact"] == "/opt/wm/models/current"
    # every value is one the node declares, within its range (the check of test_config_files)
    for rid in robots:
        for node, flat in params_of(generated, rid).items():
            specs = {p.name: p for p in SPECS[node]}
            for name, value in flat.items():
                assert name in specs, (rid, node, name)
                assert check_value(specs[name], value) is None, (rid, node, name, value)

    env = env_of(generated, "robot2")
    assert env == {
        "WM_ROBOT_ID": "robot2", "WM_FLEET": "warehouse_a", "WM_NAMESPACE": "/robot2",
        "WM_PARAMS_FILE": "/etc/wm/robot.yaml", "WM_WORLD_MODEL": "/opt/wm/models/current",
        "WM_REDIS_URL": "rediss://redis.fleet.example.com:6380/0",
        "WM_REDIS_PASSWORD_FILE": "/etc/wm/secrets/redis_password", "WM_RELEASE": "1.0.0",
        "WM_INSTALL_METHOD": "docker", "ROS_DOMAIN_ID": "17",
        "WM_IMAGE": "registry.example.com/wm/wm-robot:1.0.0"}


def test_generator_is_deterministic_and_replaces_old_output(generated, tmp_path):
    again = tmp_path / "again"
    gen.generate(str(EXAMPLE), str(again))
    for p in generated.rglob("*"):
        if p.is_file():
            assert (again / p.relative_to(generated)).read_bytes() == p.read_bytes(), p
    inv = example()
    inv["robots"] = inv["robots"][:2]
    smaller = tmp_path / "inv.yaml"
    smaller.write_text(yaml.safe_dump(inv))
    gen.generate(str(smaller), str(again))          # robot3 left the fleet: its files go
    assert not (again / "robots" / "robot3").exists()
    assert not (again / "host_vars" / "robot3.yml").exists()
    assert (again / "robots" / "robot2" / "robot.yaml").exists()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(gen.InventoryError, match="not written by generate.py"):
        gen.generate(str(EXAMPLE), str(foreign))
    assert (foreign / "notes.txt").read_text() == "mine"


def test_generator_output_holds_no_secret(generated):
    for p in generated.rglob("*"):
        if not p.is_file():
            continue
        text = p.read_text()
        assert not re.search(r"(?im)^\s*(wm_)?(redis_)?password\s*[:=]", text), p
        assert "WM_REDIS_PASSWORD=" not in text, p
        assert not re.search(r"rediss?://[^/\s]*@", text), p
        if p.suffix == ".yaml":
            keys = set(flatten(yaml.safe_load(text) or {}))
            assert not [k for k in keys if re.search(r"(password|secret|token)(?!_file|_env)",
                                                     k.split(".")[-1])], p


def test_cli_check_and_errors(tmp_path):
    run = subprocess.run([sys.executable, str(DEPLOY / "generate.py"), str(EXAMPLE), "--check"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "inventory OK: 3 robots (robot1, robot2, robot3)" in run.stdout
    inv = example()
    inv["robots"][1]["id"] = "robot1"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(inv))
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, str(DEPLOY / "generate.py"), str(bad), "--out",
                          str(out)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert "robots[1] (robot1).id: duplicate robot id 'robot1'" in run.stderr
    assert not out.exists()


def _set(inv, path, value):
    d = inv
    for k in path[:-1]:
        d = d[k]
    d[path[-1]] = value


BAD = {
    "duplicate id": (("robots", 2, "id"), "robot1", "robots[2] (robot1).id: duplicate"),
    "duplicate host": (("robots", 1, "host"), "10.20.0.11",
                       "robots[1] (robot2).host: 10.20.0.11 is also robot robot1's host"),
    "bad scheme": (("redis", "url"), "http://redis:6379/0", "unknown scheme 'http'"),
    "unix without tls": (("redis", "url"), "unix:///run/redis.sock",
                         "redis.tls_ca_file set but redis.url is not rediss://"),
    "password in url": (("redis", "url"), "rediss://wm:hunter2@redis:6380/0",
                        "redis.url: holds credentials"),
    "password key": (("redis", "password"), "hunter2", "redis.password: looks like a secret"),
    "unknown parameter": (("robots", 2, "params", "planner", "v_maximum"), 1.0,
                          "robots[2] (robot3).params.planner.v_maximum: planner declares no "
                          "parameter 'v_maximum'"),
    "unknown nested parameter": (("robots", 2, "params", "planner", "goal", "wieght"), 1.0,
                                 "params.planner.goal.wieght: planner declares no parameter"),
    "unknown node": (("robots", 0, "params"), {"controller": {"x": 1}},
                     "robots[0] (robot1).params: unknown node 'controller'"),
    "out of range": (("robots", 2, "params", "planner", "v_max"), 99.0,
                     "robots[2] (robot3).params.planner.v_max=99.0: above the maximum"),
    "wrong type": (("payload_classes", "pallet", "planner", "num_samples"), 1.5,
                   "payload_classes.pallet.planner.num_samples=1.5: expected an integer"),
    "priority out of range": (("robots", 1, "priority"), 300,
                              "robots[1] (robot2).priority=300: above the maximum 255"),
    "reserved parameter": (("params", "fleet_client", "priority"), 3,
                           "params.fleet_client.priority: set from the inventory's "
                           "robots[].priority field"),
    "id not a ROS name": (("robots", 1, "id"), "robot-2", "robots[1] (robot-2).id: 'robot-2'"),
    "id starts with digit": (("robots", 1, "id"), "2robot", "robots[1] (2robot).id"),
    "namespace not ending in id": (("robots", 0, "namespace"), "/site/robot9",
                                   "must end in the robot id 'robot1'"),
    "bad host": (("robots", 0, "host"), "robot 1", "robots[0] (robot1).host: 'robot 1'"),
    "unknown payload class": (("robots", 0, "payload_class"), "tanker",
                              "robots[0] (robot1).payload_class: 'tanker' is not in"),
    "missing model version": (("model", "version"), "9.9.9",
                              "model: artifact worldmodel-9.9.9 not found"),
    "wrong metadata pin": (("model", "metadata_sha256"), "0" * 64,
                           "model.metadata_sha256 0000"),
    "relative password path": (("redis", "password_file"), "secrets/pw",
                               "redis.password_file: 'secrets/pw' must be an absolute path"),
    "unknown key": (("robots", 0, "prio"), 3, "robots[0] (robot1): unknown key 'prio'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_generator_refuses_bad_inventory(case):
    path, value, message = BAD[case]
    inv = copy.deepcopy(example())
    _set(inv, path, value)
    with pytest.raises(gen.InventoryError) as err:
        gen.validate(inv)
    text = "\n".join(err.value.problems)
    assert message in text, text
    assert "hunter2" not in text  # an error never echoes a secret


def test_example_inventory_validates():
    inv = gen.validate(example())
    assert [r["id"] for r in inv["robots"]] == ["robot1", "robot2", "robot3"]


def test_params_file_loads_with_the_nodes_declarations(tmp_path):
    """rcl parses the generated file and rclpy accepts every value with the type the node
    declares (an integer for a double parameter would raise InvalidParameterTypeException)."""
    inv = example()
    inv["robots"][2]["params"]["planner"]["obstacle"] = {"weight": 2}      # int -> 2.0
    src = tmp_path / "inv.yaml"
    src.write_text(yaml.safe_dump(inv))
    out = tmp_path / "gen"
    gen.generate(str(src), str(out))
    script = textwrap.dedent("""
        import importlib, json, sys
        import rclpy
        from rclpy.context import Context
        from wm_common.ros.params import declare_params
        ctx = Context()
        rclpy.init(args=["--ros-args", "--params-file", sys.argv[1]], context=ctx)
        got = {}
        for name, module, attr in json.loads(sys.argv[2]):
            specs = getattr(importlib.import_module(module), attr)
            node = rclpy.create_node(name, namespace="/robot3", context=ctx)
            got[name] = declare_params(node, specs)
            node.destroy_node()
        rclpy.shutdown(context=ctx)
        print(json.dumps(got))
    """)
    nodes = [[n, m, a] for n, m, a, _ in gen.NODE_MODULES if n in SPECS]
    run = subprocess.run([sys.executable, "-c", script, str(out / "robots/robot3/robot.yaml"),
                          json.dumps(nodes)], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                             [p for p in sys.path if p.startswith(str(REPO / "src"))]
                             + [os.environ.get("PYTHONPATH", "")])))
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got["planner"]["v_max"] == 0.4 and got["planner"]["obstacle.weight"] == 2.0
    assert got["planner"]["world_model_artifact"] == "/opt/wm/models/current"
    assert got["fleet_client"]["priority"] == 5
    assert got["fleet_client"]["passing_places"] == "4.0,2.0;12.0,2.0"
    assert got["fleet_client"]["fleet"] == "warehouse_a"
    assert got["collision_monitor"]["max_linear"] == 0.6
    assert got["perception"]["deskew"] is True
    assert set(got) == set(SPECS) and len(got) >= 4
    if "monitor" in got:  # the monitor measures the model the planner drives with
        assert got["monitor"]["world_model_artifact"] == "/opt/wm/models/current"


# -- Ansible: syntax and lint -----------------------------------------------------------------

def test_playbooks_pass_syntax_check(generated, tmp_path):
    for playbook in ("site.yml", "rollback.yml"):
        run = subprocess.run([tool("ansible-playbook"), "-i", str(generated / "hosts.yml"),
                              playbook, "--syntax-check"], cwd=ANSIBLE_DIR,
                             env=ansible_env(tmp_path), capture_output=True, text=True,
                             timeout=300)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "playbook: %s" % playbook in run.stdout


def test_ansible_lint_production_profile_offline(tmp_path):
    env = ansible_env(tmp_path)
    run = subprocess.run([tool("ansible-lint"), "--offline", "--nocolor"], cwd=ANSIBLE_DIR,
                         env=env, capture_output=True, text=True, timeout=300)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-5000:]
    assert "Profile 'production' was required, and it passed" in out, out[-3000:]
    assert "0 failure(s), 0 warning(s)" in out
    # offline: nothing was installed
    collections = tmp_path / "ansible_home" / "collections"
    assert not collections.exists() or not any(collections.rglob("*.py"))
    assert not (ANSIBLE_DIR / ".ansible").exists()


# -- Ansible: real runs against localhost -----------------------------------------------------

def _artifact_copy(dest_dir: Path, version: str, corrupt: bool) -> Path:
    """A copy of the shipped artifact as worldmodel-<version> (metadata says that version);
    `corrupt` flips one byte of model.onnx, leaving metadata.json as it was."""
    dst = dest_dir / ("worldmodel-%s" % version)
    shutil.copytree(str(SHIPPED), str(dst))
    meta = dst / "metadata.json"
    text = meta.read_text()
    assert '"version": "1.0.0"' in text
    meta.write_text(text.replace('"version": "1.0.0"', '"version": "%s"' % version))
    if corrupt:
        onnx = dst / "model.onnx"
        data = bytearray(onnx.read_bytes())
        data[len(data) // 2] ^= 0x01
        onnx.write_bytes(bytes(data))
    return dst


# The "robot's" Python for the modules: the system one when there is one (modules need only the
# standard library, it starts three times faster than the venv's, and a robot has one too).
TARGET_PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable


class Fleet:
    """Two robots of the example inventory deployed to localhost, each under its own root."""

    def __init__(self, base: Path, method: str = "tarball"):
        self.base = base
        self.method = method
        self.gen = base / "gen"
        inv = example()
        if method == "tarball":
            inv["release"] = {"method": "tarball", "version": "1.0.0"}
        (base / "inventory.yaml").write_text(yaml.safe_dump(inv, sort_keys=False))
        gen.generate(str(base / "inventory.yaml"), str(self.gen))
        self.roots = {r: base / "root" / r for r in ("robot1", "robot2")}
        self.secret = "wm-test-secret-" + secrets.token_hex(8)
        self.secret_file = base / "controller" / "redis_password"
        self.secret_file.parent.mkdir(parents=True)
        self.secret_file.write_text(self.secret + "\n")
        ws = base / "ws" / "install"
        ws.mkdir(parents=True)
        (ws / "setup.bash").write_text("# a stand-in colcon workspace\n")
        self.tarball = base / "controller" / "wm-workspace-1.0.0.tar.gz"
        with tarfile.open(str(self.tarball), "w:gz") as tf:
            tf.add(str(ws), arcname="install")
        local = {"all": {"children": {"wm_robots": {
            "hosts": {r: {"wm_root": str(p)} for r, p in self.roots.items()},
            "vars": {"ansible_connection": "local",
                     "ansible_python_interpreter": TARGET_PYTHON}}}}}
        self.local_inventory = base / "local.yml"
        self.local_inventory.write_text(yaml.safe_dump(local))
        self.models = base / "controller" / "models"
        self.models.mkdir(parents=True)

    def play(self, playbook: str = "site.yml", *extra: str, limit: str = "robot1,robot2",
             verbose: bool = False) -> subprocess.CompletedProcess:
        cmd = [tool("ansible-playbook"), "-i", str(self.gen / "hosts.yml"),
               "-i", str(self.local_inventory), playbook, "--limit", limit,
               "-e", "wm_manage_systemd=false", "-e", "wm_become=false",
               "-e", "wm_manage_service_user=false",
               "-e", "wm_file_owner=%s" % pwd.getpwuid(os.getuid()).pw_name,
               "-e", "wm_file_group=%s" % grp.getgrgid(os.getgid()).gr_name,
               "-e", "wm_workspace_tarball=%s" % self.tarball,
               "-e", "wm_redis_password_src=%s" % self.secret_file] + list(extra)
        if verbose:
            cmd.append("-v")
        return subprocess.run(cmd, cwd=ANSIBLE_DIR, env=ansible_env(self.base / "ansible"),
                              capture_output=True, text=True, timeout=280)

    def link(self, robot: str, which: str) -> str:
        return os.readlink(str(self.roots[robot] / "opt/wm/models" / which))


def recap(out: str) -> dict:
    """PLAY RECAP counters per host."""
    rows = re.findall(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+"
                      r"failed=(\d+)", out, re.M)
    return {h: {"ok": int(o), "changed": int(c), "failed": int(f)} for h, o, c, _, f in rows}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    f = Fleet(tmp_path_factory.mktemp("rollout"))
    f.first = f.play(verbose=True)
    return f


def test_check_mode_on_a_new_robot_changes_nothing(fleet, tmp_path):
    """--check --diff (the dry run of deploy/README.md) passes and writes nothing."""
    root = tmp_path / "fresh_root"
    run = fleet.play("site.yml", "--check", "--diff", "-e", "wm_root=%s" % root,
                     limit="robot1")
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-6000:]
    assert recap(out)["robot1"]["changed"] > 0      # it would install
    assert not root.exists()
    assert fleet.secret not in out                  # the password copy is no_log, diff too


def test_deploy_installs_everything(fleet):
    out = fleet.first.stdout + fleet.first.stderr
    assert fleet.first.returncode == 0, out[-6000:]
    assert set(recap(out)) == {"robot1", "robot2"}
    assert "RUNNING HANDLER [wm : Restart wm-robot]" in out
    assert fleet.secret not in out                  # no_log, even with -v
    for rid, root in fleet.roots.items():
        etc = root / "etc/wm"
        assert (etc / "robot.yaml").read_bytes() == \
            (fleet.gen / "robots" / rid / "robot.yaml").read_bytes()
        assert (etc / "robot.env").read_bytes() == \
            (fleet.gen / "robots" / rid / "robot.env").read_bytes()
        assert (etc / "robot.env").stat().st_mode & 0o777 == 0o640
        assert (etc / "robot.yaml").stat().st_mode & 0o777 == 0o640
        assert etc.stat().st_mode & 0o777 == 0o750
        pw = etc / "secrets/redis_password"
        assert pw.read_text() == fleet.secret + "\n"
        assert pw.stat().st_mode & 0o777 == 0o640
        assert (etc / "secrets").stat().st_mode & 0o777 == 0o750
        assert fleet.link(rid, "current") == "releases/worldmodel-1.0.0"
        assert not (root / "opt/wm/models/previous").exists()
        installed = root / "opt/wm/models/current"
        meta = json.loads((installed / "metadata.json").read_text())
        assert sorted(meta["files"]) == ["config.json", "model.onnx", "train_config.yaml",
                                         "weights.npz"]
        for name, digest in meta["files"].items():
            assert sha256(installed / name) == digest
        assert sha256(installed / "metadata.json") == sha256(SHIPPED / "metadata.json")
        env = env_of(fleet.gen, rid)
        assert env["WM_WS_SETUP"] == "/opt/wm/workspace/current/install/setup.bash"
        assert "WM_IMAGE" not in env
        ws = root / "opt/wm/workspace"
        assert os.readlink(str(ws / "current")) == "releases/1.0.0"
        assert (ws / "current/install/setup.bash").is_file()
        assert [p.name for p in (ws / "releases").iterdir()] == ["1.0.0"]  # no staging left
        assert not (root / "etc/systemd").exists()  # systemd steps off
    for p in fleet.gen.rglob("*"):
        assert not p.is_file() or fleet.secret not in p.read_text()


def test_second_run_changes_nothing_and_restarts_nothing(fleet):
    run = fleet.play()
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-6000:]
    counts = recap(out)
    assert set(counts) == {"robot1", "robot2"}
    assert all(c["changed"] == 0 for c in counts.values()), counts
    assert "RUNNING HANDLER" not in out


def test_corrupted_artifact_fails_the_play_and_keeps_current(fleet):
    bad = _artifact_copy(fleet.models, "1.0.2", corrupt=True)
    before = {r: fleet.link(r, "current") for r in fleet.roots}
    env_before = {r: (root / "etc/wm/robot.env").read_bytes() for r, root in fleet.roots.items()}
    # pin the (unchanged) metadata.json: only the flipped byte in model.onnx is wrong
    run = fleet.play("site.yml", "-e", "wm_model_version=1.0.2",
                     "-e", "wm_model_src_dir=%s" % fleet.models,
                     "-e", "wm_model_metadata_sha256=%s" % sha256(bad / "metadata.json"))
    out = run.stdout + run.stderr
    assert run.returncode != 0, out[-6000:]
    assert "worldmodel-1.0.2" in out and "model.onnx: missing or sha256 mismatch" in out
    counts = recap(out)
    assert counts["robot1"]["failed"] == 1
    assert "robot2" not in counts                  # the rollout stopped after the canary
    for rid, root in fleet.roots.items():
        assert fleet.link(rid, "current") == before[rid] == "releases/worldmodel-1.0.0"
        releases = sorted(p.name for p in (root / "opt/wm/models/releases").iterdir())
        assert releases == ["worldmodel-1.0.0"], releases   # rejected copy removed
        assert (root / "etc/wm/robot.env").read_bytes() == env_before[rid]


def test_metadata_pin_mismatch_fails(fleet):
    """The generated inventory pins metadata.json of 1.0.0: a 1.0.3 without a new pin fails."""
    _artifact_copy(fleet.models, "1.0.3", corrupt=False)
    run = fleet.play("site.yml", "-e", "wm_model_version=1.0.3",
                     "-e", "wm_model_src_dir=%s" % fleet.models, limit="robot1")
    out = run.stdout + run.stderr
    assert run.returncode != 0
    assert "metadata.json has sha256" in out and "the inventory pins" in out
    assert fleet.link("robot1", "current") == "releases/worldmodel-1.0.0"


def test_new_release_keeps_previous_and_rollback_restores_it(fleet):
    good = _artifact_copy(fleet.models, "1.0.1", corrupt=False)
    run = fleet.play("site.yml", "-e", "wm_model_version=1.0.1",
                     "-e", "wm_model_src_dir=%s" % fleet.models,
                     "-e", "wm_model_metadata_sha256=%s" % sha256(good / "metadata.json"),
                     limit="robot1")
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-6000:]
    assert fleet.link("robot1", "current") == "releases/worldmodel-1.0.1"
    assert fleet.link("robot1", "previous") == "releases/worldmodel-1.0.0"
    assert "RUNNING HANDLER [wm : Restart wm-robot]" in out

    run = fleet.play("rollback.yml", limit="robot1")
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-6000:]
    assert fleet.link("robot1", "current") == "releases/worldmodel-1.0.0"
    assert fleet.link("robot1", "previous") == "releases/worldmodel-1.0.1"
    assert "RUNNING HANDLER [wm : Restart wm-robot]" in out
    # robot2 was not part of it
    assert fleet.link("robot2", "current") == "releases/worldmodel-1.0.0"


FAKE_DOCKER = """#!/bin/sh
# stands in for the docker CLI: records its arguments, knows one image once loaded or pulled
echo "$*" >> "{log}"
case "$1 $2" in
  "image inspect") if [ -f "{state}" ]; then echo sha256:0123; exit 0; fi
                   echo "Error: No such image: $5" >&2; exit 1 ;;
  "load --input") test -s "$3" && touch "{state}" && echo "Loaded image: $(cat "$3")" ;;
  "pull "*) touch "{state}" ;;
  *) exit 2 ;;
esac
"""


def test_docker_release_loads_the_image_once(tmp_path_factory):
    f = Fleet(tmp_path_factory.mktemp("docker"), method="docker")
    log, state = f.base / "docker.log", f.base / "docker.state"
    fake = f.base / "docker"
    fake.write_text(FAKE_DOCKER.format(log=log, state=state))
    fake.chmod(0o755)
    archive = f.base / "controller" / "wm-robot-1.0.0.tar"
    archive.write_text("registry.example.com/wm/wm-robot:1.0.0\n")
    args = ("-e", "wm_docker_bin=%s" % fake, "-e", "wm_image_archive=%s" % archive)
    run = f.play("site.yml", *args, limit="robot1")
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-6000:]
    image = "registry.example.com/wm/wm-robot:1.0.0"
    calls = log.read_text().splitlines()
    loaded = str(f.roots["robot1"] / "opt/wm/.incoming-image.tar")
    assert calls == ["image inspect --format {{.Id}} %s" % image, "load --input %s" % loaded,
                     "image inspect --format {{.Id}} %s" % image], calls
    assert not Path(loaded).exists()                 # the copied archive is removed
    env = env_of(f.gen, "robot1")
    assert env["WM_IMAGE"] == image and "WM_WS_SETUP" not in env
    assert (f.roots["robot1"] / "etc/wm/robot.env").read_text() == \
        (f.gen / "robots/robot1/robot.env").read_text()
    assert not (f.roots["robot1"] / "opt/wm/workspace/current").exists()
    assert os.readlink(str(f.roots["robot1"] / "opt/wm/models/current")) == \
        "releases/worldmodel-1.0.0"

    run = f.play("site.yml", *args, limit="robot1")   # image there: no load, no change
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-6000:]
    assert log.read_text().splitlines()[3:] == ["image inspect --format {{.Id}} %s" % image]
    assert recap(out)["robot1"]["changed"] == 0
