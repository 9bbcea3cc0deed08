"""config/diagnostics/analyzers.yaml (diagnostic_aggregator, Humble) puts every DiagnosticStatus
our nodes publish into exactly one group, the right one.

The status names are not typed in here: they are read from the nodes' sources (the node name in
super().__init__("...") and the label in DiagnosticsReporter(self, "...")) and formatted by
DiagnosticsReporter.publish itself (with a stand-in node), for robots with and without a
namespace. The matching rule is Humble's GenericAnalyzer::match (ros/diagnostics, branch humble,
diagnostic_aggregator/src/generic_analyzer.cpp): regex (std::regex_match: the whole name),
expected / name (equal), startswith and find_and_remove_prefix (prefix), contains (substring);
an analyzer matches when any of its rules does, and the aggregator hands a status to every
analyzer that matches (the rest go to "Other").
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
ANALYZERS = REPO / "config" / "diagnostics" / "analyzers.yaml"
NAMESPACES = ("", "robot1", "robot2", "robot10")
# reporter label -> the group it belongs in
GROUPS = {"perception": "Perception", "planner": "Planner", "collision monitor": "Safety",
          "fleet client": "Fleet", "monitor": "Monitor", "lifecycle_manager": "Lifecycle"}
LIST_KEYS = ("startswith", "contains", "find_and_remove_prefix", "remove_prefix", "expected",
             "regex", "name")
TYPES = {"diagnostic_aggregator/GenericAnalyzer", "diagnostic_aggregator/AnalyzerGroup",
         "diagnostic_aggregator/DiscardAnalyzer", "diagnostic_aggregator/IgnoreAnalyzer"}

REPORTER = re.compile(r"DiagnosticsReporter\(\s*self\s*,\s*[\"']([^\"']+)[\"']")
NODE_NAME = re.compile(r"super\(\)\.__init__\(\s*[\"']([^\"']+)[\"']")


def reporters():
    """(node name, reporter label, source file) for every node that reports diagnostics."""
    found = []
    for path in sorted((REPO / "src").glob("*/*/**/*.py")):
        if "test" in path.parts:
            continue
        text = path.read_text()
        labels = REPORTER.findall(text)
        if not labels:
            continue
        names = NODE_NAME.findall(text)
        assert len(names) == 1, "%s: cannot tell the node's name (%s)" % (path, names)
        found += [(names[0], label, path) for label in labels]
    return found


class StubNode:
    """What DiagnosticsReporter needs from an rclpy node, recording what it publishes."""

    def __init__(self, name, namespace):
        self.name, self.namespace, self.sent = name, "/" + namespace if namespace else "/", []

    def get_namespace(self):
        return self.namespace

    def get_fully_qualified_name(self):
        return self.namespace.rstrip("/") + "/" + self.name

    def create_publisher(self, _type, _topic, _qos):
        node = self

        class Pub:
            def publish(self, msg):
                node.sent.append(msg)
        return Pub()

    def create_timer(self, _period, _cb):
        return object()

    def get_clock(self):
        from rclpy.clock import Clock, ClockType
        return Clock(clock_type=ClockType.SYSTEM_TIME)


def published_statuses():
    """[(status name, hardware_id, label)] as DiagnosticsReporter publishes them."""
    pytest.importorskip("diagnostic_msgs.msg")
    from wm_common.ros.diagnostics import DiagnosticsReporter
    out = []
    for node_name, label, _ in reporters():
        for ns in NAMESPACES:
            node = StubNode(node_name, ns)
            DiagnosticsReporter(node, label).publish()
            (status,) = node.sent[-1].status
            out.append((status.name, status.hardware_id, label))
    return out


def load_analyzers(doc):
    """{analyzer key path: params} of the GenericAnalyzers (groups flattened), with checks of the
    parameter types Humble's aggregator insists on."""
    keys = [k for k in doc if k in ("analyzers", "/**/analyzers", "/**")]
    assert len(keys) == 1, "expected the aggregator's node key ('analyzers'), got %s" % list(doc)
    params = doc[keys[0]]["ros__parameters"]
    assert isinstance(params.get("path", ""), str)
    found = {}

    def walk(tree, prefix):
        for key, value in tree.items():
            if not isinstance(value, dict):
                continue
            kind = value.get("type")
            assert kind in TYPES, "%s%s: unknown analyzer type %r" % (prefix, key, kind)
            assert isinstance(value.get("path"), str) and value["path"], (prefix + key)
            if kind == "diagnostic_aggregator/AnalyzerGroup":
                walk(value.get("analyzers", {}), prefix + key + ".")
                continue
            if kind != "diagnostic_aggregator/GenericAnalyzer":
                continue
            for lk in LIST_KEYS:
                if lk in value:
                    v = value[lk]
                    assert isinstance(v, list) and v and all(isinstance(s, str) and s for s in v), (
                        "%s%s.%s must be a list of strings (as_string_array)" % (prefix, key, lk))
            assert any(lk in value for lk in LIST_KEYS), "%s%s matches nothing" % (prefix, key)
            if "timeout" in value:
                assert isinstance(value["timeout"], float), (
                    "%s%s.timeout must be a double (as_double): %r" % (
                        prefix, key, value["timeout"]))
            for rx in value.get("regex", []):
                re.compile(rx)
            found[prefix + key] = value
    walk(params, "")
    return found


def matches(analyzer, name):
    """GenericAnalyzer::match (Humble)."""
    if any(re.fullmatch(rx, name) for rx in analyzer.get("regex", [])):
        return True
    if name in analyzer.get("expected", []) or name in analyzer.get("name", []):
        return True
    prefixes = analyzer.get("startswith", []) + analyzer.get("find_and_remove_prefix", [])
    if any(name.startswith(p) for p in prefixes):
        return True
    return any(c in name for c in analyzer.get("contains", []))


def matching(analyzers, name):
    return [key for key, a in analyzers.items() if matches(a, name)]


@pytest.fixture(scope="module")
def analyzers():
    return load_analyzers(yaml.safe_load(ANALYZERS.read_text()))


def test_the_nodes_that_report_are_the_ones_we_group():
    labels = {label for _, label, _ in reporters()}
    assert labels == set(GROUPS), "new or renamed DiagnosticsReporter: %s" % (
        labels ^ set(GROUPS))


def test_status_names_have_the_format_the_analyzers_assume():
    statuses = published_statuses()
    assert ("/robot1/collision_monitor: collision monitor", "robot1",
            "collision monitor") in statuses
    assert ("/planner: planner", "robot", "planner") in statuses


def test_every_status_is_matched_by_exactly_one_analyzer_of_its_group(analyzers):
    assert {a["path"] for a in analyzers.values()} >= set(GROUPS.values())
    for name, _, label in published_statuses():
        hits = matching(analyzers, name)
        assert len(hits) == 1, "%r is matched by %s" % (name, hits or "no analyzer (Other)")
        assert analyzers[hits[0]]["path"] == GROUPS[label], (name, analyzers[hits[0]]["path"])


def test_the_check_can_fail(analyzers):
    """The matcher and the type checks reject what the aggregator would get wrong."""
    assert matching(analyzers, "/robot1/unknown_node: something") == []
    loose = dict(analyzers, broad={"type": "diagnostic_aggregator/GenericAnalyzer",
                                   "path": "Broad", "contains": ["monitor"]})
    assert len(matching(loose, "/robot1/collision_monitor: collision monitor")) == 2
    assert matches({"startswith": ["/robot1"]}, "/robot1/planner: planner")
    assert not matches({"startswith": ["planner"]}, "/robot1/planner: planner")
    assert matches({"regex": ["/robot[0-9]+/planner: .*"]}, "/robot3/planner: planner")
    assert not matches({"regex": ["planner"]}, "/robot3/planner: planner")  # whole name
    assert matches({"expected": ["/planner: planner"]}, "/planner: planner")
    bad = {"analyzers": {"ros__parameters": {"x": {
        "type": "diagnostic_aggregator/GenericAnalyzer", "path": "X",
        "contains": "/planner: ", "timeout": 5}}}}
    with pytest.raises(AssertionError, match="list of strings"):
        load_analyzers(bad)
    bad["analyzers"]["ros__parameters"]["x"]["contains"] = ["/planner: "]
    with pytest.raises(AssertionError, match="double"):
        load_analyzers(bad)


def test_bringup_installs_the_analyzers():
    """setup.py installs config/ recursively (data_tree), so config/diagnostics/ goes along."""
    setup_py = (REPO / "src" / "wm_bringup" / "setup.py").read_text()
    assert "data_tree('config'" in setup_py and "recursive=True" in setup_py
