"""Every import of every package's code is declared in its package.xml (rosdep-correct).

For each src/wm_*/ package with Python modules, every non-test module (and wm_bringup's launch
files) is parsed with `ast`, and every imported top-level module is collected: module level,
function level and inside `try:` (an optional import is still installed on a robot, so it is
declared). Each import is then

* mapped to a rosdep key by IMPORT_KEYS (or a wm_* package, its own key): the key must be an
  <exec_depend>/<depend> of the package; for a module in TOOL_MODULES (development tools, not
  robot code) a <test_depend> is enough;
* or a PIP_ONLY module (no usable rosdep key): it must be pinned in requirements.lock instead;
* or listed in NOT_DECLARED with the reason it is not declared;
* otherwise the test fails: a new dependency has to be classified in one of these tables.

Launch files also count the packages they start or read (`package="..."`, FindPackageShare),
and EXECUTABLES the programs a module runs. Every declared key must be known (no typos), the
workspace must order topologically the way colcon does (test_depend edges included), and no
robot package may pull the simulator, Gazebo or redis-server in through exec dependencies.

Plain Python: nothing from ROS is imported.
"""
from __future__ import annotations

import ast
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
LOCK = REPO / "requirements.lock"

# --- import -> rosdep key -----------------------------------------------------------------
# Keys checked against ros/rosdistro (rosdep/python.yaml, rosdep/base.yaml and
# humble/distribution.yaml). ROS packages are their own keys.
IMPORT_KEYS = {
    # system Python packages (rosdep/python.yaml)
    "numpy": "python3-numpy",
    "scipy": "python3-scipy",
    "yaml": "python3-yaml",
    # ubuntu focal (JetPack 5) has no definition: there torch is NVIDIA's wheel
    # (rosdep install --skip-keys python3-torch), see jetson/Dockerfile
    "torch": "python3-torch",
    "redis": "python3-redis",
    "cryptography": "python3-cryptography",
    "matplotlib": "python3-matplotlib",
    "prometheus_client": "python3-prometheus-client",
    "httpx": "python3-httpx",
    "uvicorn": "python3-uvicorn",
    # ROS 2 packages (humble/distribution.yaml)
    "rclpy": "rclpy",
    "launch": "launch",
    "launch_ros": "launch_ros",
    "ament_index_python": "ament_index_python",
    # the Python module tf2_ros is shipped by the ROS package tf2_ros_py (tf2_ros is C++ only)
    "tf2_ros": "tf2_ros_py",
    "action_msgs": "action_msgs",
    "builtin_interfaces": "builtin_interfaces",
    "diagnostic_msgs": "diagnostic_msgs",
    "geometry_msgs": "geometry_msgs",
    "lifecycle_msgs": "lifecycle_msgs",
    "nav2_msgs": "nav2_msgs",
    "nav_msgs": "nav_msgs",
    "rcl_interfaces": "rcl_interfaces",
    "rosgraph_msgs": "rosgraph_msgs",
    "sensor_msgs": "sensor_msgs",
    "std_msgs": "std_msgs",
    "std_srvs": "std_srvs",
    "tf2_msgs": "tf2_msgs",
    "visualization_msgs": "visualization_msgs",
}

# Keys a package.xml may declare that no import maps to: build tools, and the ROS packages or
# programs that launch files and modules start (launch refs and EXECUTABLES use these names).
OTHER_KEYS = {
    "ament_cmake": "build tool of wm_msgs",
    "rosidl_default_generators": "message generation (wm_msgs)",
    "rosidl_default_runtime": "message runtime (wm_msgs)",
    "python3-pytest": "the packages' tests",
    "rviz2": "RViz, started by the launch files with rviz:=true",
    "ros_gz_sim": "Gazebo (gz-sim) server and spawner, sim.launch.py",
    "ros_gz_bridge": "Gazebo <-> ROS topic bridge, sim.launch.py",
    "robot_state_publisher": "the robot's URDF on /tf, sim.launch.py",
    "redis-server": "the private Redis of the demo, eval and drills (wm_eval.redis_server)",
}

# Declared keys that are wrong, with what to declare instead.
WRONG_KEYS = {
    "tf2_ros": "the ROS package tf2_ros is C++ only; `import tf2_ros` comes from tf2_ros_py: "
               "declare <exec_depend>tf2_ros_py</exec_depend>",
}

# Imports without a usable rosdep key: installed with pip from requirements.lock (pinned),
# never declared in package.xml. import name -> (distribution in requirements.lock, evidence).
# A "-pip" rosdep key runs an unpinned `pip install` and cannot be released with bloom, so it
# counts as no key here.
PIP_ONLY = {
    "casadi": ("casadi", "rosdep has only the pip key casadi-pip, no system package"),
    "mujoco": ("mujoco", "rosdep has only the pip key python3-mujoco-pip"),
    "rosbags": ("rosbags", "rosdep has only the pip key python3-rosbags-pip"),
    "open3d": ("open3d", "python3-open3d resolves on Ubuntu 22.04 only (null on focal = "
                         "JetPack 5 and on noble) and is far older than the pinned 0.20; "
                         "optional (scipy fallback)"),
    "spconv": ("spconv", "no rosdep key"),
    "mcap": ("mcap", "no rosdep key (mcap-ros2-support is another distribution, pip only)"),
    "zstandard": ("zstandard", "no rosdep key"),
    "dask": ("dask", "no rosdep key"),
    "distributed": ("distributed", "no rosdep key"),
    "pytorch_mppi": ("pytorch_mppi", "no rosdep key"),
    "fastapi": ("fastapi", "python3-fastapi exists but Ubuntu's is built on pydantic 1; "
                           "wm_service needs the pydantic 2 stack of requirements.lock"),
    "pydantic": ("pydantic", "python3-pydantic exists but Ubuntu (jammy, noble) ships 1.x; "
                             "wm_service.schemas uses the pydantic 2 API"),
    "typing_extensions": ("typing_extensions", "python3-typing-extensions exists but jammy's "
                                               "is older than pydantic 2 needs (4.6)"),
}

# Imports deliberately not declared: (module path under src/, or "*" for any) -> reason.
NOT_DECLARED = {
    ("*", "tensorrt"): "comes with JetPack (NVIDIA's L4T packages), no rosdep key; optional "
                       "(wm_world_model.tensorrt_engine, Jetson only)",
    ("wm_bringup/launch/robot.launch.py", "rviz2"):
        "optional (rviz:=true): a desktop tool, a headless robot does not install RViz",
}

# Development tools, not robot code: their dependencies may be <test_depend> (installed with
# `rosdep install --dependency-types test`). Module path under src/ -> reason.
TOOL_MODULES = {
    "wm_bringup/launch/sim.launch.py": "simulation: Gazebo (wm_gazebo, ros_gz)",
    "wm_bringup/launch/fleet_sim.launch.py": "simulation: a fleet in wm_sim's simulator",
    "wm_bringup/launch/rviz.launch.py": "the operator's workstation: RViz and the robot model "
                                        "(robot_state_publisher with wm_gazebo's URDF)",
    "wm_perception/wm_perception/train_encoder.py": "scene-encoder training",
    "wm_perception/wm_perception/tools/inspect_cloud.py": "offline cloud inspection (plots)",
    "wm_perception/wm_perception/tools/replay.py": "offline bag reading for the tools",
    "wm_perception/wm_perception/tools/replay_node.py": "replays recorded clouds (bags)",
    "wm_world_model/wm_world_model/data.py": "training data from bags",
    "wm_world_model/wm_world_model/recording.py": "driving-data bags: written by wm_sim.datagen, "
                                                  "read for training",
    "wm_world_model/wm_world_model/train.py": "`make train`",
    "wm_world_model/wm_world_model/evaluate.py": "model evaluation report and plots",
    "wm_world_model/wm_world_model/sign.py": "signs artifacts (release machine)",
    "wm_monitor/wm_monitor/finetune.py": "`make finetune`: retraining off the robot",
    "wm_service/wm_service/process.py": "runs the service for tests, benchmark and demo",
}

# Programs a module runs (not imports): module path under src/ -> keys.
EXECUTABLES = {
}

# Never exec dependencies of what a robot installs (robot.launch.py's packages and wm_bringup).
DEV_ONLY_KEYS = {"wm_sim", "wm_gazebo", "redis-server", "ros_gz_sim", "ros_gz_bridge"}

RUN_TAGS = ("depend", "exec_depend")
ALL_DEP_TAGS = ("depend", "exec_depend", "build_depend", "build_export_depend",
                "buildtool_depend", "buildtool_export_depend", "test_depend", "doc_depend")
LAUNCH_REF_CALLS = {"FindPackageShare", "get_package_share_directory",
                    "get_package_prefix", "FindPackagePrefix"}


# --- collection ---------------------------------------------------------------------------
def workspace_packages(src: Path = SRC) -> dict:
    return {d.name: d for d in sorted(src.glob("wm_*")) if (d / "package.xml").is_file()}


def read_manifest(pkg_dir: Path) -> dict:
    """{tag: set of keys} of a package.xml, plus 'name' and 'version'."""
    root = ET.parse(pkg_dir / "package.xml").getroot()
    out = {tag: {e.text.strip() for e in root.findall(tag)} for tag in ALL_DEP_TAGS}
    out["name"] = root.findtext("name").strip()
    out["version"] = root.findtext("version").strip()
    return out


def package_modules(pkg_dir: Path) -> list:
    """Non-test modules of a package (plus wm_bringup's launch files)."""
    mods = [p for p in sorted((pkg_dir / pkg_dir.name).rglob("*.py"))
            if not {"test", "tests", "__pycache__"} & set(p.relative_to(pkg_dir).parts)]
    if (pkg_dir / "launch").is_dir():
        mods += sorted((pkg_dir / "launch").glob("*.py"))
    return mods


def module_requirements(path: Path) -> list:
    """[(name, line, kind)]: top-level imports (kind 'import') and, in launch files, packages
    started or read (kind 'launch')."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name.split(".")[0], node.lineno, "import") for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.append((node.module.split(".")[0], node.lineno, "import"))
        elif path.name.endswith(".launch.py") and isinstance(node, ast.Call):
            func = node.func
            fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            args = []
            if fname in LAUNCH_REF_CALLS and node.args:
                args.append(node.args[0])
            args += [k.value for k in node.keywords if k.arg == "package"]
            found += [(a.value, node.lineno, "launch") for a in args
                      if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    return found


def locked_distributions(lock: Path = LOCK) -> set:
    names = set()
    for line in lock.read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            names.add(canonical(line.split("==")[0]))
    return names


def canonical(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


# --- the checks ---------------------------------------------------------------------------
def check_package(pkg_dir: Path, workspace: set, locked: set, tool_modules=None,
                  not_declared=None, executables=None) -> list:
    """Problems of one package's package.xml against its modules' imports (strings)."""
    tool_modules = TOOL_MODULES if tool_modules is None else tool_modules
    not_declared = NOT_DECLARED if not_declared is None else not_declared
    executables = EXECUTABLES if executables is None else executables
    pkg = pkg_dir.name
    manifest = read_manifest(pkg_dir)
    run = set().union(*(manifest[t] for t in RUN_TAGS))
    test = manifest["test_depend"]
    xml = "src/%s/package.xml" % pkg
    problems = []
    for path in package_modules(pkg_dir):
        rel = "%s/%s" % (pkg, path.relative_to(pkg_dir).as_posix())
        lines = {}
        for name, line, kind in module_requirements(path):
            lines.setdefault((name, kind), []).append(line)
        for key in executables.get(rel, []):
            lines.setdefault((key, "exec"), [])
        tool = rel in tool_modules
        for (name, kind), at in sorted(lines.items()):
            if kind == "import" and (name in sys.stdlib_module_names or name == pkg):
                continue
            if kind != "import" and name == pkg:
                continue
            if (rel, name) in not_declared or ("*", name) in not_declared:
                continue
            where = "src/" + rel + (":" + ",".join(map(str, sorted(set(at)))) if at else "")
            what = {"import": "imports %r" % name, "launch": "launches/reads package %r" % name,
                    "exec": "runs the program %r" % name}[kind]
            if kind == "import" and name in PIP_ONLY:
                dist = PIP_ONLY[name][0]
                if canonical(dist) not in locked:
                    problems.append(
                        "%s: %s %s, a pip-only dependency (%s), but %s is not pinned in "
                        "requirements.lock: add '%s==<version>'"
                        % (pkg, where, what, PIP_ONLY[name][1], dist, dist))
                continue
            if kind == "import":
                key = name if name in workspace else IMPORT_KEYS.get(name)
            else:
                key = name if (name in workspace or name in known_keys()) else None
            if key is None:
                problems.append(
                    "%s: %s %s, which is not classified: add it to IMPORT_KEYS (its rosdep key), "
                    "PIP_ONLY (no rosdep key; pin it in requirements.lock) or NOT_DECLARED "
                    "(with the reason) in tests/test_package_deps.py" % (pkg, where, what))
                continue
            if key in run or (tool and key in test):
                continue
            if tool:
                problems.append(
                    "%s: %s %s -> rosdep key %r is not declared: add <test_depend>%s</test_depend> "
                    "(development tool: %s) or <exec_depend> to %s"
                    % (pkg, where, what, key, key, tool_modules[rel], xml))
            else:
                extra = (" (it is only a <test_depend>: robot code needs it at run time)"
                         if key in test else "")
                problems.append(
                    "%s: %s %s -> rosdep key %r is not declared%s: add <exec_depend>%s"
                    "</exec_depend> to %s (or list the module in TOOL_MODULES if it is a "
                    "development tool)" % (pkg, where, what, key, extra, key, xml))
    return problems


def known_keys() -> set:
    return set(IMPORT_KEYS.values()) | set(OTHER_KEYS)


def check_declared_keys(pkg_dir: Path, workspace: set) -> list:
    manifest = read_manifest(pkg_dir)
    problems = []
    if manifest["name"] != pkg_dir.name:
        problems.append("src/%s/package.xml: <name>%s</name> differs from its folder"
                        % (pkg_dir.name, manifest["name"]))
    for tag in ALL_DEP_TAGS:
        for key in sorted(manifest[tag]):
            if key in WRONG_KEYS:
                problems.append("src/%s/package.xml: <%s>%s</%s>: %s"
                                % (pkg_dir.name, tag, key, tag, WRONG_KEYS[key]))
            elif key not in known_keys() and key not in workspace:
                problems.append(
                    "src/%s/package.xml: <%s>%s</%s> is neither a wm_ package nor a known rosdep "
                    "key: fix the typo, or add the key to IMPORT_KEYS/OTHER_KEYS in "
                    "tests/test_package_deps.py" % (pkg_dir.name, tag, key, tag))
    return problems


def topological_problems(manifests: dict) -> list:
    """colcon's ordering: direct dependencies of every type, recursive ones through run
    dependencies (colcon build --recursive_categories run); a cycle stops every build."""
    names = set(manifests)

    def run_deps(p):
        return {d for t in RUN_TAGS for d in manifests[p][t]} & names

    recursive = {}
    for p in names:
        queue = {d for t in ALL_DEP_TAGS for d in manifests[p][t]} & names
        seen = set()
        while queue:
            d = queue.pop()
            if d not in seen:
                seen.add(d)
                queue |= run_deps(d) - seen
        recursive[p] = seen
    remaining = {p: set(r) for p, r in recursive.items()}
    while remaining:
        ready = [p for p, r in remaining.items() if not r]
        if not ready:
            return ["colcon cannot order the packages topologically (a dependency cycle, "
                    "test_depend included): " + "; ".join(
                        "%s needs %s" % (p, sorted(r)) for p, r in sorted(remaining.items()))]
        for p in ready:
            remaining.pop(p)
        for r in remaining.values():
            r.difference_update(ready)
    return []


# --- tests --------------------------------------------------------------------------------
PACKAGES = workspace_packages()
PY_PACKAGES = [n for n, d in PACKAGES.items() if (d / n).is_dir()]


@pytest.mark.parametrize("pkg", PY_PACKAGES)
def test_imports_are_declared(pkg):
    problems = check_package(PACKAGES[pkg], set(PACKAGES), locked_distributions())
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("pkg", sorted(PACKAGES))
def test_declared_keys_are_known(pkg):
    problems = check_declared_keys(PACKAGES[pkg], set(PACKAGES))
    assert not problems, "\n".join(problems)


def test_workspace_orders_topologically():
    problems = topological_problems({n: read_manifest(d) for n, d in PACKAGES.items()})
    assert not problems, "\n".join(problems)


def test_robot_install_has_no_simulator_gazebo_or_redis_server():
    """What robot.launch.py starts (and wm_bringup) and their exec dependencies, recursively,
    never exec-depend on the simulator, Gazebo or redis-server."""
    launch = SRC / "wm_bringup" / "launch" / "robot.launch.py"
    roots = {"wm_bringup"} | {n for n, _, k in module_requirements(launch)
                              if k == "launch" and n in PACKAGES}
    manifests = {n: read_manifest(d) for n, d in PACKAGES.items()}
    seen, queue, problems = set(), set(roots), []
    while queue:
        p = queue.pop()
        seen.add(p)
        run = set().union(*(manifests[p][t] for t in RUN_TAGS))
        problems += ["src/%s/package.xml exec-depends on %s, which a robot must not install "
                     "(robot.launch.py needs %s): make it a <test_depend>" % (p, k, p)
                     for k in sorted(run & DEV_ONLY_KEYS)]
        queue |= (run & set(PACKAGES)) - seen - DEV_ONLY_KEYS
    assert not problems, "\n".join(problems)


def test_tables_name_existing_modules():
    stale = [m for m in list(TOOL_MODULES) + list(EXECUTABLES)
             + [m for m, _ in NOT_DECLARED if m != "*"] if not (SRC / m).is_file()]
    assert not stale, "tables in tests/test_package_deps.py name missing modules: %s" % stale
    overlap = set(PIP_ONLY) & set(IMPORT_KEYS)
    assert not overlap, "both PIP_ONLY and IMPORT_KEYS: %s" % sorted(overlap)


def test_pip_only_pins_exist():
    locked = locked_distributions()
    missing = [d for d, _ in PIP_ONLY.values() if canonical(d) not in locked]
    assert not missing, "PIP_ONLY distributions not pinned in requirements.lock: %s" % missing


@pytest.mark.parametrize("pkg", sorted(PACKAGES))
def test_manifest_parses_with_catkin_pkg(pkg):
    catkin_pkg = pytest.importorskip("catkin_pkg.package")
    parsed = catkin_pkg.parse_package(str(PACKAGES[pkg] / "package.xml"))
    parsed.validate()
    assert parsed.package_format == 3
    assert [lic for lic in parsed.licenses] == ["Apache-2.0"]


def test_license_file_is_apache_2():
    text = (REPO / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


@pytest.mark.parametrize("pkg", sorted(PACKAGES))
def test_changelog_matches_version(pkg):
    path = PACKAGES[pkg] / "CHANGELOG.rst"
    assert path.is_file(), "%s is missing" % path.relative_to(REPO)
    lines = path.read_text().splitlines()
    title = "Changelog for package %s" % pkg
    assert lines[:2] == [title, "^" * len(title)], "%s: bad title" % path
    versions = [(m.group(1), lines[i + 1]) for i, line in enumerate(lines[:-1])
                for m in [re.match(r"^(\d+\.\d+\.\d+) \(\d{4}-\d{2}-\d{2}\)$", line)] if m]
    assert versions, "%s: no 'X.Y.Z (YYYY-MM-DD)' section" % path
    top, underline = versions[0]
    assert underline == "-" * len("%s (2026-12-07)" % top) and set(underline) == {"-"}
    assert top == read_manifest(PACKAGES[pkg])["version"], (
        "%s: newest section %s, package.xml says %s"
        % (path, top, read_manifest(PACKAGES[pkg])["version"]))


# --- the checker itself -------------------------------------------------------------------
MANIFEST = """<?xml version="1.0"?>
<package format="3">
  <name>wm_fake</name>
  <version>0.1.0</version>
  <description>fake</description>
  <maintainer email="a@b.c">a</maintainer>
  <license>Apache-2.0</license>
  %s
  <export><build_type>ament_python</build_type></export>
</package>
"""


def make_package(tmp_path, deps, modules):
    pkg = tmp_path / "src" / "wm_fake"
    (pkg / "wm_fake" / "test").mkdir(parents=True)
    (pkg / "package.xml").write_text(MANIFEST % deps)
    for name, text in modules.items():
        (pkg / "wm_fake" / name).write_text(text)
    (pkg / "wm_fake" / "test" / "test_x.py").write_text("import undeclared_in_tests\n")
    return pkg


def test_checker_reports_undeclared_imports(tmp_path):
    pkg = make_package(
        tmp_path, "<exec_depend>rclpy</exec_depend><test_depend>python3-yaml</test_depend>",
        {"node.py": "import os\nimport rclpy\nfrom . import tool\nfrom wm_fake import tool\n"
                    "def f():\n    try:\n        import numpy\n    except ImportError:\n"
                    "        pass\n    import yaml\n    import frobnicate\n    import casadi\n",
         "tool.py": "import yaml\nimport scipy\n"})
    problems = check_package(pkg, {"wm_fake"}, locked=set(),
                             tool_modules={"wm_fake/wm_fake/tool.py": "a tool"},
                             not_declared={}, executables={})
    text = "\n".join(problems)
    assert "src/wm_fake/wm_fake/node.py:7 imports 'numpy' -> rosdep key 'python3-numpy'" in text
    assert "add <exec_depend>python3-numpy</exec_depend> to src/wm_fake/package.xml" in text
    assert "node.py:10 imports 'yaml'" in text and "only a <test_depend>" in text
    assert "node.py:11 imports 'frobnicate', which is not classified" in text
    assert "node.py:12 imports 'casadi', a pip-only dependency" in text
    assert "tool.py:2 imports 'scipy'" in text and "<test_depend>python3-scipy" in text
    assert "tool.py:1" not in text  # yaml as a test_depend is enough for a tool
    assert "rclpy" not in text and "'os'" not in text and "undeclared_in_tests" not in text
    assert len(problems) == 5, text
    # declared: nothing left but the unclassified import
    pkg = make_package(tmp_path / "ok", "<exec_depend>rclpy</exec_depend>"
                       "<exec_depend>python3-numpy</exec_depend>"
                       "<exec_depend>python3-yaml</exec_depend>"
                       "<exec_depend>python3-scipy</exec_depend>",
                       {"node.py": "import numpy, yaml, scipy, rclpy, casadi, frobnicate\n"})
    problems = check_package(pkg, {"wm_fake"}, locked={"casadi"}, tool_modules={},
                             not_declared={}, executables={})
    assert len(problems) == 1 and "'frobnicate', which is not classified" in problems[0]


def test_checker_reports_unknown_keys_and_cycles(tmp_path):
    pkg = make_package(tmp_path, "<exec_depend>python3-nunpy</exec_depend>"
                                 "<exec_depend>tf2_ros</exec_depend>", {})
    text = "\n".join(check_declared_keys(pkg, {"wm_fake"}))
    assert "<exec_depend>python3-nunpy</exec_depend> is neither" in text
    assert "tf2_ros_py" in text
    empty = {t: set() for t in ALL_DEP_TAGS}
    a = dict(empty, test_depend={"b"})
    b = dict(empty, exec_depend={"c"})
    c = dict(empty, exec_depend={"a"})
    assert topological_problems({"a": a, "b": b, "c": c})
    assert not topological_problems({"a": a, "b": b, "c": empty})
