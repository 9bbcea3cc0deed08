"""The Fast DDS profiles and the variables that load them.

config/fastdds.xml (Fast DDS 3.x, Kilted: FASTDDS_DEFAULT_PROFILES_FILE) and
config/fastdds_humble.xml (Fast DDS 2.x, Humble's 2.6 on the robots: FASTRTPS_DEFAULT_PROFILES_FILE)
must say the same thing. They differ only where the two versions disagree: the schema namespace,
<publisher> (2.x schema) for <data_writer> (3.x schema; both parsers take either) and the writer
timing names (heartbeatPeriod in 2.x, heartbeat_period in 3.x). Each Fast DDS rejects the other's
timing names, and one rejected element makes it drop the whole file, shared-memory segment
included (measured on 3.2.2: 16x1024 clouds 6 % instead of 100 %), so a 3.x name in the Humble
file (or the reverse) is a failure here, not a style point.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
V3 = REPO / "config" / "fastdds.xml"
V2 = REPO / "config" / "fastdds_humble.xml"
ENV_SH = REPO / "scripts" / "env.sh"
NS3 = "http://www.eprosima.com"
NS2 = "http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles"
# writer / reader <times> children: Fast DDS 2.x name -> 3.x name (XMLParserCommon.cpp)
TIMES_2_TO_3 = {
    "initialHeartbeatDelay": "initial_heartbeat_delay",
    "heartbeatPeriod": "heartbeat_period",
    "nackResponseDelay": "nack_response_delay",
    "nackSupressionDuration": "nack_supression_duration",
    "initialAcknackDelay": "initial_acknack_delay",
    "heartbeatResponseDelay": "heartbeat_response_delay",
}
TIMES_3_TO_2 = {v: k for k, v in TIMES_2_TO_3.items()}


def split(tag):
    ns, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
    return ns, local


def canonical(path: Path, rename):
    """(tag, attributes, text, children) with namespaces dropped and tags renamed."""
    def walk(el):
        local = split(el.tag)[1]
        return (rename.get(local, local), tuple(sorted(el.attrib.items())),
                (el.text or "").strip(), tuple(walk(c) for c in el))
    return walk(ET.parse(path).getroot())


def local_tags(path: Path):
    return {split(el.tag)[1] for el in ET.parse(path).getroot().iter()}


def test_each_file_is_in_its_versions_namespace():
    assert split(ET.parse(V3).getroot().tag) == (NS3, "dds")
    assert split(ET.parse(V2).getroot().tag) == (NS2, "dds")


def test_each_file_uses_only_its_versions_element_names():
    v3_tags, v2_tags = local_tags(V3), local_tags(V2)
    assert "heartbeat_period" in v3_tags and "heartbeatPeriod" in v2_tags
    assert not v3_tags & set(TIMES_2_TO_3), "2.x names in %s: %s" % (
        V3.name, v3_tags & set(TIMES_2_TO_3))
    assert not v2_tags & set(TIMES_3_TO_2), "3.x names in %s: %s" % (
        V2.name, v2_tags & set(TIMES_3_TO_2))
    # 3.x's schema knows only <data_writer>, 2.6's only <publisher>
    assert "publisher" not in v3_tags and "data_writer" not in v2_tags


def test_the_two_files_say_the_same():
    v3 = canonical(V3, {})
    v2 = canonical(V2, dict(TIMES_2_TO_3, publisher="data_writer"))
    assert v2 == v3


def test_the_profile_holds_the_measured_settings():
    root = ET.parse(V3).getroot()
    ns = {"d": NS3}
    ids = {}
    for td in root.iterfind("d:profiles/d:transport_descriptors/d:transport_descriptor", ns):
        ids[td.findtext("d:transport_id", namespaces=ns)] = td
    shm = [td for td in ids.values() if td.findtext("d:type", namespaces=ns) == "SHM"]
    assert len(shm) == 1 and int(shm[0].findtext("d:segment_size", namespaces=ns)) >= 64 << 20
    part = root.find("d:profiles/d:participant[@is_default_profile='true']", ns)
    assert part is not None
    used = [e.text for e in part.iterfind("d:rtps/d:userTransports/d:transport_id", ns)]
    assert used and set(used) <= set(ids), (used, sorted(ids))
    assert part.findtext("d:rtps/d:useBuiltinTransports", namespaces=ns) == "false"
    hb = root.find("d:profiles/d:data_writer[@is_default_profile='true']/d:times/"
                   "d:heartbeat_period", ns)
    assert hb is not None and int(hb.findtext("d:sec", namespaces=ns)) == 0
    assert 0 < int(hb.findtext("d:nanosec", namespaces=ns)) <= 100_000_000


def test_fastdds_xml_validates_against_the_installed_fast_dds_3_schema():
    """The venv's share/fastdds/fastdds_profiles.xsd is upstream's v3.2.2 schema."""
    xsd = REPO / ".venv" / "share" / "fastdds" / "fastdds_profiles.xsd"
    xmllint = shutil.which("xmllint")
    if not xsd.is_file() or xmllint is None:
        pytest.skip("needs xmllint (libxml2-utils) and the venv's Fast DDS schema")
    r = subprocess.run([xmllint, "--noout", "--schema", str(xsd), str(V3)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    # and the check can fail: the Humble file's 2.x names are not 3.x's
    bad = V2.read_text().replace(NS2, NS3)
    r = subprocess.run([xmllint, "--noout", "--schema", str(xsd), "-"], input=bad,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0


def sourced_env(extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")}
    env.update(extra)
    r = subprocess.run(
        ["bash", "-c", 'source "$1" >/dev/null && '
         'echo "FASTDDS=${FASTDDS_DEFAULT_PROFILES_FILE-<unset>}" && '
         'echo "FASTRTPS=${FASTRTPS_DEFAULT_PROFILES_FILE-<unset>}" && '
         'echo "VENV=$VIRTUAL_ENV"', "_", str(ENV_SH)],
        env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return dict(line.split("=", 1) for line in r.stdout.splitlines())


def test_env_sh_exports_each_variable_for_its_fast_dds():
    if not (REPO / ".venv" / "bin" / "python").exists():
        pytest.skip("no .venv")
    got = sourced_env({})
    assert got["FASTDDS"] == str(V3)
    lib = Path(got["VENV"]) / "lib"
    if list(lib.glob("libfastrtps.so.2*")):  # a Fast DDS 2.x environment
        assert got["FASTRTPS"] == str(V2)
    else:  # Fast DDS 3: rmw_fastrtps would load it too and warn in every process
        assert list(lib.glob("libfastdds.so.3*"))
        assert got["FASTRTPS"] == "<unset>"
    # a value the user set is kept, for both
    got = sourced_env({"FASTDDS_DEFAULT_PROFILES_FILE": "/x/a.xml",
                       "FASTRTPS_DEFAULT_PROFILES_FILE": "/x/b.xml"})
    assert (got["FASTDDS"], got["FASTRTPS"]) == ("/x/a.xml", "/x/b.xml")


def test_env_sh_names_the_right_file_for_each_variable():
    text = ENV_SH.read_text()
    assert re.search(r'FASTDDS_DEFAULT_PROFILES_FILE="\$\{FASTDDS_DEFAULT_PROFILES_FILE:-'
                     r'\$_wm_root/config/fastdds\.xml\}"', text)
    assert re.search(r'FASTRTPS_DEFAULT_PROFILES_FILE="\$\{FASTRTPS_DEFAULT_PROFILES_FILE:-'
                     r'\$_wm_root/config/fastdds_humble\.xml\}"', text)
