"""Static checks of the launch files (the launch library is not installable here): every
package, executable, parameter file and launch argument they name exists."""
from __future__ import annotations

import ast
import configparser
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LAUNCH = REPO / "launch"
# External ROS packages (ROS 2 desktop, ros_gz) the launch files may use, with the
# executables and launch files of theirs they may name; every other package is under src/.
EXTERNAL = {
    "rviz2": {"executables": {"rviz2"}, "launch": set()},
    "ros_gz_sim": {"executables": {"create"}, "launch": {"gz_sim.launch.py"}},
    "ros_gz_bridge": {"executables": {"parameter_bridge"}, "launch": set()},
    "robot_state_publisher": {"executables": {"robot_state_publisher"}, "launch": set()},
}


def entry_points(package: str):
    setup_py = (REPO / "src" / package / "setup.py").read_text()
    return set(re.findall(r"['\"](\w+)\s*=\s*[\w.]+:\w+['\"]", setup_py))


def calls(tree, name):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            fname = f.id if isinstance(f, ast.Name) else getattr(f, "attr", None)
            if fname == name:
                yield node


def kwarg(call, key):
    for kw in call.keywords:
        if kw.arg == key:
            return kw.value
    return None


def share_package(node):
    """Package of the FindPackageShare('pkg') inside node, or None."""
    for c in calls(node, "FindPackageShare"):
        if c.args and isinstance(c.args[0], ast.Constant):
            return c.args[0].value
    return None


def launch_files():
    return sorted(LAUNCH.glob("*.launch.py"))


def test_robot_launch_exists():
    assert (LAUNCH / "robot.launch.py").exists()


@pytest.mark.parametrize("path", launch_files(), ids=lambda p: p.name)
def test_launch_file_references_exist(path):
    src = path.read_text()
    tree = ast.parse(src)
    compile(src, str(path), "exec")  # syntax
    assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description"
               for n in tree.body)
    nodes = list(calls(tree, "Node")) + list(calls(tree, "LifecycleNode"))
    assert nodes, "no nodes in %s" % path.name
    for call in nodes:
        pkg = kwarg(call, "package").value
        exe = kwarg(call, "executable").value
        if pkg in EXTERNAL:  # external tools, installed with ROS 2 desktop / ros_gz
            assert exe in EXTERNAL[pkg]["executables"], "%s has no executable %s" % (pkg, exe)
            continue
        assert (REPO / "src" / pkg / "package.xml").exists(), "unknown package %s" % pkg
        assert exe in entry_points(pkg), "%s has no executable %s" % (pkg, exe)
        cfg = configparser.ConfigParser()
        cfg.read(REPO / "src" / pkg / "setup.cfg")
        assert cfg.get("install", "install_scripts") == "$base/lib/" + pkg
    # every LaunchConfiguration is declared
    declared = {c.args[0].value for c in calls(tree, "DeclareLaunchArgument")}
    used = {c.args[0].value for c in calls(tree, "LaunchConfiguration")}
    assert used <= declared, "undeclared launch arguments: %s" % (used - declared)
    # every file named next to FindPackageShare('wm_bringup') exists in the installed folders;
    # next to another package of src/ it exists in that package; external ones are listed
    for call in calls(tree, "PathJoinSubstitution"):
        parts = call.args[0].elts
        consts = [p.value for p in parts if isinstance(p, ast.Constant)]
        pkg = share_package(call)
        if pkg in EXTERNAL:
            launch_names = {c for c in consts if str(c).endswith(".launch.py")}
            assert launch_names <= EXTERNAL[pkg]["launch"], "%s: unknown %s" % (pkg, consts)
            continue
        if pkg not in (None, "wm_bringup"):
            assert (REPO / "src" / pkg / "package.xml").exists(), "unknown package %s" % pkg
            if consts:
                target = REPO.joinpath("src", pkg, *consts)
                assert target.exists(), "%s names missing %s" % (path.name, target)
            continue
        if consts and consts[0] in ("config", "launch"):
            target = REPO.joinpath(*consts)
            assert target.exists(), "%s names missing %s" % (path.name, target)
    for inc in calls(tree, "PythonLaunchDescriptionSource"):
        pkg = share_package(inc)
        for c in ast.walk(inc):
            if isinstance(c, ast.Constant) and str(c.value).endswith(".launch.py"):
                if pkg in EXTERNAL:
                    assert c.value in EXTERNAL[pkg]["launch"], "%s: %s" % (pkg, c.value)
                else:
                    assert (LAUNCH / c.value).exists()


def test_bringup_installs_launch_and_config():
    for name in ("launch", "config"):
        link = REPO / "src" / "wm_bringup" / name
        assert link.is_symlink() and link.resolve() == (REPO / name).resolve()
    installed = REPO / "ros2_ws" / "install" / "wm_bringup" / "share" / "wm_bringup"
    for path in launch_files():
        assert (installed / "launch" / path.name).exists()
    for rel in ("robot.yaml", "wm.rviz", "fastdds.xml", "fastdds_humble.xml",
                "diagnostics/analyzers.yaml"):
        assert (installed / "config" / rel).exists(), rel


def declared_arguments(path: Path):
    return {c.args[0].value for c in calls(ast.parse(path.read_text()), "DeclareLaunchArgument")}


@pytest.mark.parametrize("path", launch_files(), ids=lambda p: p.name)
def test_included_launch_files_get_only_arguments_they_declare(path):
    """An argument passed to an included launch file of ours that it does not declare is
    silently ignored by launch: a typo there would go unnoticed on the robot."""
    tree = ast.parse(path.read_text())
    for inc in calls(tree, "IncludeLaunchDescription"):
        names = [c.value for c in ast.walk(inc) if isinstance(c, ast.Constant)
                 and str(c.value).endswith(".launch.py")]
        ours = [n for n in names if (LAUNCH / n).exists()]
        args = kwarg(inc, "launch_arguments")
        if not ours or args is None:
            continue
        dict_node = args.func.value if isinstance(args, ast.Call) else args
        assert isinstance(dict_node, ast.Dict), ast.dump(args)
        passed = {k.value for k in dict_node.keys}
        missing = passed - declared_arguments(LAUNCH / ours[0])
        assert not missing, "%s passes undeclared %s to %s" % (path.name, missing, ours[0])


def test_robot_launch_runs_the_lifecycle_manager_over_its_own_nodes():
    """The manager's node_names are exactly the lifecycle nodes robot.launch.py starts."""
    tree = ast.parse((LAUNCH / "robot.launch.py").read_text())
    lifecycle = {kwarg(c, "name").value for c in calls(tree, "LifecycleNode")}
    managers = [c for c in calls(tree, "Node") if kwarg(c, "executable").value
                == "lifecycle_manager"]
    assert len(managers) == 1
    names = None
    for d in ast.walk(kwarg(managers[0], "parameters")):
        if isinstance(d, ast.Dict):
            for k, v in zip(d.keys, d.values):
                if isinstance(k, ast.Constant) and k.value == "node_names":
                    names = [e.value for e in v.elts]
    assert names is not None and set(names) == lifecycle, (names, lifecycle)
    # the safety gate comes after the planner it guards; perception before the planner
    assert names.index("perception") < names.index("planner") < names.index("collision_monitor")


def _remaps(tree, call):
    """The (from, to) pairs of a Node's remappings=, following a module-level list name."""
    consts = {t.id: v for n in tree.body if isinstance(n, ast.Assign)
              for t in n.targets if isinstance(t, ast.Name) for v in [n.value]}
    pairs = []

    def collect(node):
        if isinstance(node, ast.Name):
            collect(consts[node.id])
        elif isinstance(node, ast.BinOp):
            collect(node.left)
            collect(node.right)
        elif isinstance(node, ast.List):
            pairs.extend((e.elts[0].value, e.elts[1].value) for e in node.elts)
    collect(kwarg(call, "remappings"))
    return set(pairs)


def test_rviz_launch_runs_rviz_and_the_robot_model_in_the_robots_namespace():
    """rviz.launch.py: namespace (default robot1) and rviz_config; RViz and robot_state_publisher
    in that namespace with TF on <ns>/tf, <ns>/tf_static (the multi-robot convention) and RViz's
    tools on <ns>/goal_pose, <ns>/initialpose, <ns>/clicked_point; the URDF as robot_description,
    no frame_prefix (frames stay unprefixed)."""
    path = LAUNCH / "rviz.launch.py"
    tree = ast.parse(path.read_text())
    args = {c.args[0].value: c for c in calls(tree, "DeclareLaunchArgument")}
    assert {"namespace", "rviz_config"} <= set(args)
    assert kwarg(args["namespace"], "default_value").value == "robot1"
    nodes = {kwarg(c, "package").value: c for c in calls(tree, "Node")}
    assert set(nodes) == {"rviz2", "robot_state_publisher"}
    tf = {("/tf", "tf"), ("/tf_static", "tf_static")}
    tools = {("/goal_pose", "goal_pose"), ("/initialpose", "initialpose"),
             ("/clicked_point", "clicked_point")}
    for pkg, call in nodes.items():
        ns = kwarg(call, "namespace")
        assert isinstance(ns, ast.Name) and ns.id == "namespace", pkg
        assert tf <= _remaps(tree, call), pkg
    assert tools <= _remaps(tree, nodes["rviz2"])
    rviz_args = kwarg(nodes["rviz2"], "arguments")
    assert rviz_args.elts[0].value == "-d" and rviz_args.elts[1].id == "rviz_config"
    rsp = ast.dump(kwarg(nodes["robot_state_publisher"], "parameters"))
    assert "'robot_description'" in rsp and "frame_prefix" not in rsp
    assert "'wm_robot.urdf'" in ast.dump(tree) and "'wm.rviz'" in ast.dump(tree)


def test_each_robot_of_a_fleet_gets_its_own_endpoints_and_tf_topics():
    """Robots on one host must not share the monitor's Prometheus port (a second monitor's
    configure fails with 'Address already in use' and its lifecycle manager brings the robot
    down, seen under ros2 launch), and every node reads the robot's own TF (/<ns>/tf)."""
    robot = (LAUNCH / "robot.launch.py").read_text()
    fleet = (LAUNCH / "fleet_sim.launch.py").read_text()
    assert 'DeclareLaunchArgument(\n            "metrics_port"' in robot
    assert '"metrics_port": metrics_port' in robot
    assert re.search(r'"metrics_port": str\(9469 \+ i\)', fleet)
    tree = ast.parse(robot)
    nodes = list(calls(tree, "LifecycleNode"))
    assert len(nodes) == 5
    for node in nodes:
        remaps = ast.unparse(kwarg(node, "remappings"))
        assert "TF_REMAPS" in remaps, ast.unparse(kwarg(node, "name"))
    assert 'TF_REMAPS = [("/tf", "tf"), ("/tf_static", "tf_static")]' in robot
