"""Per-robot deployment files from one fleet inventory.

    python deploy/generate.py deploy/inventory.example.yaml --out deploy/generated
    python deploy/generate.py INVENTORY --check          # validate only, write nothing

Reads the fleet inventory (see deploy/inventory.example.yaml), validates it and writes:

    OUT/hosts.yml                    Ansible inventory: group wm_robots (inventory order: the
                                     first robot is the canary of the rolling update) and the
                                     fleet-wide variables of deploy/ansible/site.yml
    OUT/host_vars/<id>.yml           per-robot Ansible variables
    OUT/robots/<id>/robot.yaml       the robot's complete ROS 2 parameter file: the base file
                                     (config/robot.yaml) + fleet params + payload class + the
                                     robot's own params + the fleet client's identity
    OUT/robots/<id>/robot.env        EnvironmentFile of the systemd unit (/etc/wm/robot.env):
                                     what jetson/wm-robot.service and wm-robot-docker.service
                                     read (WM_ROBOT_ID, WM_PARAMS_FILE, WM_WORLD_MODEL,
                                     WM_REDIS_URL, ROS_DOMAIN_ID, WM_WS_SETUP or WM_IMAGE)

Nothing written contains a secret: the inventory may only say *where* the Redis password file
lives on the robot; the generator refuses an inventory holding a password (a ``password`` key,
a password in the Redis URL). The password itself reaches the robot through the playbook
(``wm_redis_password_src`` or an Ansible Vault variable ``wm_redis_password``).

Parameter overrides are checked against the parameters the nodes declare
(wm_perception / wm_planner / wm_safety / wm_fleet ``*_PARAMS``) with
``wm_common.params.check_value``, the function tests/test_config_files.py checks the shipped
YAML files with. Output is deterministic: the same inventory, base file and artifact give
byte-identical files.

Runs on the controller (Python 3.8+, PyYAML, numpy for the artifact check); no rclpy.
"""
from __future__ import annotations

import argparse
import importlib
import ipaddress
import os
import re
import shutil
import sys
from typing import Any, Dict, List, Optional, Sequence
from urllib.parse import parse_qsl, urlsplit

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _src_on_path() -> None:
    """Put the packages of src/ on sys.path (when the colcon overlay is not sourced, or a new
    package is not built yet): the generator only needs their plain-Python params modules."""
    src = os.path.join(REPO, "src")
    for pkg in sorted(os.listdir(src)):
        path = os.path.join(src, pkg)
        if os.path.isdir(os.path.join(path, pkg)) and path not in sys.path:
            sys.path.append(path)


try:
    import wm_common.params  # noqa: F401
except ImportError:
    _src_on_path()

from wm_common.files import sha256_file  # noqa: E402
from wm_common.params import Param, check_value, flatten  # noqa: E402
from wm_fleet.connection import SCHEMES, RedisConfig  # noqa: E402
from wm_fleet.params import FLEET_PARAMS  # noqa: E402
from wm_fleet.schema import ID_RE  # noqa: E402

# Nodes a robot's parameter file configures: (node name, params module, list name, required).
# The optional ones are taken when their package exists (robot.launch.py grows with them).
NODE_MODULES = (
    ("perception", "wm_perception.params", "PERCEPTION_PARAMS", True),
    ("planner", "wm_planner.params", "PLANNER_PARAMS", True),
    ("collision_monitor", "wm_safety.params", "SAFETY_PARAMS", True),
    ("fleet_client", "wm_fleet.params", "FLEET_PARAMS", True),
    ("monitor", "wm_monitor.params", "MONITOR_PARAMS", False),
    ("lifecycle_manager", "wm_bringup.params", "MANAGER_PARAMS", False),
)
# Declared by rclpy or the lifecycle base class for every node (tests/test_config_files.py);
# the launch file sets them, so a params override of them is refused.
COMMON = {"use_sim_time", "autostart"}


def _node_specs() -> Dict[str, Sequence[Param]]:
    specs: Dict[str, Sequence[Param]] = {}
    for node, module, attr, required in NODE_MODULES:
        try:
            mod = importlib.import_module(module)
        except ImportError:
            _src_on_path()
            try:
                mod = importlib.import_module(module)
            except ImportError:
                if required:
                    raise
                continue
        specs[node] = getattr(mod, attr)
    return specs


NODE_SPECS = _node_specs()
GROUP = "wm_robots"                      # the Ansible group site.yml runs on
DEFAULT_BASE_PARAMS = os.path.join(REPO, "config", "robot.yaml")
DEFAULT_MODELS_DIR = os.path.join(REPO, "src", "wm_world_model", "models")
MARKER = ".wm-generated"                 # an output directory this tool owns

# Where things live on the robot (the playbook installs under wm_root + these paths).
ROBOT_PATHS = {
    "wm_etc_dir": "/etc/wm",
    "wm_env_path": "/etc/wm/robot.env",
    "wm_params_path": "/etc/wm/robot.yaml",
    "wm_opt_dir": "/opt/wm",
    "wm_models_dir": "/opt/wm/models",            # releases/<artifact>, current, previous
    "wm_workspace_dir": "/opt/wm/workspace",      # releases/<release>, current, previous
}
MODEL_CURRENT = ROBOT_PATHS["wm_models_dir"] + "/current"
WORKSPACE_CURRENT = ROBOT_PATHS["wm_workspace_dir"] + "/current"

# ROS 2 name token (rmw_validate_namespace) that is also a fleet robot id (wm_fleet.schema.ID_RE):
# a letter first, then letters, digits, '_'; no '__' (reserved by ROS 2 name rules).
ROS_TOKEN_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
                         r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
IMAGE_RE = re.compile(r"^[a-z0-9][a-z0-9._/:@-]{0,254}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
SAFE_VALUE_RE = re.compile(r"^[A-Za-z0-9_@%+=:,./~-]*$")   # an EnvironmentFile value, unquoted
SECRET_KEY_RE = re.compile(r"(^|_)(pass|password|passwd|secret|token|credentials?|private_key|"
                           r"api_key)($|_)", re.I)
ALLOWED_SECRET_KEYS = {"password_file", "password_env"}     # say where, never what

TOP_KEYS = {"fleet", "ros_domain_id", "release", "model", "redis", "payload_classes",
            "params", "robots"}
ROBOT_KEYS = {"id", "host", "namespace", "priority", "payload_class", "params"}
REDIS_KEYS = {"url", "username", "password_file", "tls_ca_file", "tls_cert_file",
              "tls_key_file", "sentinels", "sentinel_master", "cluster"}
RELEASE_KEYS = {"method", "version", "image"}
MODEL_KEYS = {"name", "version", "metadata_sha256"}
# Set from the inventory's own fields: a params override of these is refused.
RESERVED = {
    "fleet_client": {"fleet": "fleet", "redis_url": "redis.url",
                     "username": "redis.username", "password_file": "redis.password_file",
                     "password_env": "redis.password_file", "tls_ca_file": "redis.tls_ca_file",
                     "tls_cert_file": "redis.tls_cert_file", "tls_key_file": "redis.tls_key_file",
                     "sentinels": "redis.sentinels", "sentinel_master": "redis.sentinel_master",
                     "cluster": "redis.cluster", "priority": "robots[].priority",
                     "model_version": "model.version"},
    "planner": {"world_model_artifact": "model.version"},
    "monitor": {"world_model_artifact": "model.version"},
}


class InventoryError(ValueError):
    """An inventory that must not be rolled out; ``.problems`` lists every reason."""

    def __init__(self, problems: List[str]):
        super().__init__("invalid inventory:\n  " + "\n  ".join(problems))
        self.problems = problems


# -- helpers ----------------------------------------------------------------------------------

def unflatten(flat: Dict[str, Any]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for name, v in flat.items():
        parts = name.split(".")
        d = out
        for p in parts[:-1]:
            d = d.setdefault(p, {})
        d[parts[-1]] = v
    return out


def _find_secrets(node: Any, where: str, out: List[str]) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            path = "%s.%s" % (where, k) if where else str(k)
            if (isinstance(k, str) and SECRET_KEY_RE.search(k)
                    and k not in ALLOWED_SECRET_KEYS):
                out.append("%s: looks like a secret; the inventory may only say where the "
                           "password file lives on the robot (redis.password_file)" % path)
            else:
                _find_secrets(v, path, out)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _find_secrets(v, "%s[%d]" % (where, i), out)


def _unknown(d: Dict[str, Any], allowed: set, where: str, problems: List[str]) -> None:
    for k in sorted(set(d) - allowed, key=str):
        problems.append("%s: unknown key %r (allowed: %s)" % (where, k, ", ".join(sorted(allowed))))


def _abs_path(value: Any, where: str, problems: List[str]) -> str:
    if value in (None, ""):
        return ""
    if not isinstance(value, str) or not value.startswith("/") or "\n" in value:
        problems.append("%s: %r must be an absolute path on the robot" % (where, value))
        return ""
    if not SAFE_VALUE_RE.match(value):
        problems.append("%s: %r: use letters, digits and _@%%+=:,./~- only" % (where, value))
        return ""
    return value


def check_node_params(params: Any, where: str, problems: List[str],
                      reserved: bool = True) -> Dict[str, Dict]:
    """Params overrides {node: {name: value}} checked against the nodes' declarations (and,
    with `reserved`, refused for what the inventory's own fields set); returns them flattened
    per node."""
    if params in (None, {}):
        return {}
    if not isinstance(params, dict):
        problems.append("%s: expected a map of node name -> parameters" % where)
        return {}
    out: Dict[str, Dict] = {}
    for node, body in params.items():
        if node not in NODE_SPECS:
            problems.append("%s: unknown node %r (nodes: %s)"
                            % (where, node, ", ".join(sorted(NODE_SPECS))))
            continue
        if not isinstance(body, dict):
            problems.append("%s.%s: expected a map of parameters" % (where, node))
            continue
        specs = {p.name: p for p in NODE_SPECS[node]}
        flat = flatten(body)
        for name, value in flat.items():
            key = "%s.%s.%s" % (where, node, name)
            if name in COMMON:
                if reserved:
                    problems.append("%s: set by the launch file, not a params override" % key)
            elif reserved and name in RESERVED.get(node, {}):
                problems.append("%s: set from the inventory's %s field, not a params override"
                                % (key, RESERVED[node][name]))
            elif name not in specs:
                problems.append("%s: %s declares no parameter %r" % (key, node, name))
            else:
                # the inventory may say 2 for a double: it is written as 2.0 (ros_typed)
                why = check_value(specs[name], ros_typed(specs[name], value))
                if why is not None:
                    problems.append("%s=%r: %s" % (key, value, why))
        out[node] = flat
    return out


# -- validation -------------------------------------------------------------------------------

def _check_redis(redis: Any, problems: List[str]) -> Dict[str, Any]:
    if not isinstance(redis, dict):
        problems.append("redis: expected a map with at least url")
        return {}
    _unknown(redis, REDIS_KEYS, "redis", problems)
    url = redis.get("url")
    if not isinstance(url, str) or not url:
        problems.append("redis.url: required (redis://, rediss:// or unix://)")
        return {}
    parts = urlsplit(url)
    query = {k.lower() for k, _ in parse_qsl(parts.query, keep_blank_values=True)}
    if "@" in parts.netloc or "password" in query:
        # never echo the URL: it holds a secret
        problems.append("redis.url: holds credentials; put no user or password in the URL "
                        "(redis.username, redis.password_file)")
        return {}
    username = redis.get("username", "") or ""
    if not isinstance(username, str) or not SAFE_VALUE_RE.match(username):
        problems.append("redis.username: %r is not a Redis ACL user name" % (username,))
    sentinels = redis.get("sentinels") or []
    if isinstance(sentinels, str):
        sentinels = [sentinels]
    cluster = redis.get("cluster", False)
    try:  # the fleet client's own checks (scheme, host, port, db, Sentinel, Cluster)
        RedisConfig(url=url, username=username if isinstance(username, str) else "",
                    sentinels=[str(s) for s in sentinels],
                    sentinel_master=str(redis.get("sentinel_master", "") or ""),
                    cluster=cluster if isinstance(cluster, bool) else False).validate()
    except ValueError as e:
        problems.append("redis: %s" % e)
    if not isinstance(cluster, bool):
        problems.append("redis.cluster: expected true or false")
    scheme = url.partition("://")[0].lower()
    if scheme in SCHEMES and not SAFE_VALUE_RE.match(url):
        problems.append("redis.url: use no quotes, spaces or '#' (it goes into robot.env)")
    out = {"url": url, "username": username, "sentinels": [str(s) for s in sentinels],
           "sentinel_master": str(redis.get("sentinel_master", "") or ""),
           "cluster": cluster is True}
    out["password_file"] = _abs_path(redis.get("password_file"), "redis.password_file",
                                     problems)
    for name in ("tls_ca_file", "tls_cert_file", "tls_key_file"):
        out[name] = _abs_path(redis.get(name), "redis." + name, problems)
        if out[name] and scheme != "rediss":
            problems.append("redis.%s set but redis.url is not rediss:// (TLS)" % name)
    if out["tls_key_file"] and not out["tls_cert_file"]:
        problems.append("redis.tls_key_file set without redis.tls_cert_file")
    return out


def _check_model(model: Any, models_dir: str, problems: List[str]) -> Dict[str, str]:
    if not isinstance(model, dict):
        problems.append("model: expected a map with version")
        return {}
    _unknown(model, MODEL_KEYS, "model", problems)
    name = model.get("name", "worldmodel")
    version = model.get("version")
    if not isinstance(version, str) or not re.match(r"^\d+\.\d+\.\d+$", version):
        problems.append("model.version: %r must be a version string like \"1.0.0\" (quoted)"
                        % (version,))
        return {}
    if name != "worldmodel":
        problems.append("model.name: %r; the planner loads worldmodel artifacts" % (name,))
        return {}
    dirname = "%s-%s" % (name, version)
    pin = model.get("metadata_sha256", "") or ""
    if pin and (not isinstance(pin, str) or not SHA256_RE.match(pin)):
        problems.append("model.metadata_sha256: expected 64 lowercase hex digits")
        pin = ""
    path = os.path.join(models_dir, dirname)
    if not os.path.isdir(path):
        problems.append("model: artifact %s not found under %s (pass --models-dir)"
                        % (dirname, models_dir))
        return {}
    from wm_world_model.artifact import ArtifactError, read_metadata
    try:  # the planner's own loader checks: schema, version, every file's sha256
        read_metadata(path)
    except ArtifactError as e:
        problems.append("model: %s" % e)
        return {}
    actual = sha256_file(os.path.join(path, "metadata.json"))
    if pin and pin != actual:
        problems.append("model.metadata_sha256 %s does not match %s/metadata.json (%s)"
                        % (pin, dirname, actual))
    return {"name": name, "version": version, "dirname": dirname, "metadata_sha256": actual,
            "src": path}


def _check_release(release: Any, problems: List[str]) -> Dict[str, str]:
    if not isinstance(release, dict):
        problems.append("release: expected a map with method and version")
        return {}
    _unknown(release, RELEASE_KEYS, "release", problems)
    method = release.get("method")
    version = release.get("version")
    out = {"method": method, "version": version, "image": release.get("image", "") or ""}
    if method not in ("docker", "tarball"):
        problems.append("release.method: %r, expected docker or tarball" % (method,))
    if not isinstance(version, str) or not VERSION_RE.match(version):
        problems.append("release.version: %r: letters, digits and ._+- (quote it)" % (version,))
    if method == "docker":
        if not isinstance(out["image"], str) or not IMAGE_RE.match(out["image"]):
            problems.append("release.image: %r is not a Docker image reference (docker needs "
                            "one, e.g. registry.example.com/wm/wm-robot:1.0.0)" % (out["image"],))
    elif out["image"]:
        problems.append("release.image: only with method docker")
    return out


def _check_host(host: Any, where: str, problems: List[str]) -> str:
    if not isinstance(host, str) or not host:
        problems.append("%s.host: required (hostname or IP address)" % where)
        return ""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not HOSTNAME_RE.match(host) or host.replace(".", "").isdigit():
        problems.append("%s.host: %r is neither a hostname nor an IP address" % (where, host))
        return ""
    return host.lower()


def _check_namespace(ns: Any, rid: str, where: str, problems: List[str]) -> str:
    if ns in (None, ""):
        return "/" + rid
    if not isinstance(ns, str):
        problems.append("%s.namespace: expected a string like /%s" % (where, rid))
        return ""
    tokens = ns.strip("/").split("/")
    bad = [t for t in tokens if not ROS_TOKEN_RE.match(t) or "__" in t]
    if bad or ns.endswith("/") and ns != "/":
        problems.append("%s.namespace: %r is not a ROS 2 namespace (tokens: a letter, then "
                        "letters, digits, '_'; no '__')" % (where, ns))
        return ""
    if tokens[-1] != rid:
        problems.append("%s.namespace: %r must end in the robot id %r (the fleet client takes "
                        "its Redis robot id from the namespace's last token)" % (where, ns, rid))
        return ""
    return "/" + "/".join(tokens)


def validate(inv: Any, models_dir: str = DEFAULT_MODELS_DIR) -> Dict[str, Any]:
    """The inventory, checked and normalised; raises InventoryError listing every problem."""
    problems: List[str] = []
    if not isinstance(inv, dict):
        raise InventoryError(["the inventory must be a YAML map"])
    _find_secrets(inv, "", problems)
    _unknown(inv, TOP_KEYS, "inventory", problems)

    fleet = inv.get("fleet")
    if not isinstance(fleet, str) or not ID_RE.match(fleet):
        problems.append("fleet: %r: letters, digits, '_' or '-', 1-64 characters (a Redis key "
                        "part)" % (fleet,))
    domain = inv.get("ros_domain_id", 0)
    if isinstance(domain, bool) or not isinstance(domain, int) or not 0 <= domain <= 101:
        problems.append("ros_domain_id: %r, expected an integer 0..101" % (domain,))
    release = _check_release(inv.get("release"), problems)
    model = _check_model(inv.get("model"), models_dir, problems)
    redis = _check_redis(inv.get("redis"), problems)
    fleet_params = check_node_params(inv.get("params"), "params", problems)

    classes_raw = inv.get("payload_classes") or {}
    classes: Dict[str, Dict[str, Dict]] = {}
    if not isinstance(classes_raw, dict):
        problems.append("payload_classes: expected a map of class name -> node parameters")
        classes_raw = {}
    for cname, cparams in classes_raw.items():
        if not isinstance(cname, str) or not ID_RE.match(cname):
            problems.append("payload_classes: bad class name %r" % (cname,))
            continue
        classes[cname] = check_node_params(cparams, "payload_classes.%s" % cname, problems)

    robots_raw = inv.get("robots")
    robots: List[Dict[str, Any]] = []
    if not isinstance(robots_raw, list) or not robots_raw:
        problems.append("robots: expected a non-empty list")
        robots_raw = []
    seen_ids: Dict[str, int] = {}
    seen_hosts: Dict[str, str] = {}
    seen_ns: Dict[str, str] = {}
    for i, r in enumerate(robots_raw):
        if not isinstance(r, dict):
            problems.append("robots[%d]: expected a map" % i)
            continue
        rid = r.get("id")
        where = "robots[%d] (%s)" % (i, rid) if isinstance(rid, str) else "robots[%d]" % i
        _unknown(r, ROBOT_KEYS, where, problems)
        if (not isinstance(rid, str) or not ROS_TOKEN_RE.match(rid) or "__" in rid
                or not ID_RE.match(rid)):
            problems.append("%s.id: %r: a letter, then letters, digits or '_' (no '__'), "
                            "at most 64 characters: a ROS 2 namespace token and a Redis key "
                            "part" % (where, rid))
            continue
        if rid in seen_ids:
            problems.append("%s.id: duplicate robot id %r (also robots[%d])"
                            % (where, rid, seen_ids[rid]))
            continue
        seen_ids[rid] = i
        host = _check_host(r.get("host"), where, problems)
        if host and host in seen_hosts:
            problems.append("%s.host: %s is also robot %s's host" % (where, host,
                                                                     seen_hosts[host]))
        elif host:
            seen_hosts[host] = rid
        ns = _check_namespace(r.get("namespace"), rid, where, problems)
        if ns and ns in seen_ns:
            problems.append("%s.namespace: %s is also robot %s's" % (where, ns, seen_ns[ns]))
        elif ns:
            seen_ns[ns] = rid
        prio = r.get("priority", 0)
        why = check_value({p.name: p for p in FLEET_PARAMS}["priority"], prio)
        if why is not None:
            problems.append("%s.priority=%r: %s" % (where, prio, why))
        pclass = r.get("payload_class")
        if pclass is None and classes:
            problems.append("%s.payload_class: required (one of %s)"
                            % (where, ", ".join(sorted(classes))))
        elif pclass is not None and pclass not in classes:
            problems.append("%s.payload_class: %r is not in payload_classes (%s)"
                            % (where, pclass, ", ".join(sorted(classes)) or "none defined"))
        own = check_node_params(r.get("params"), "%s.params" % where, problems)
        robots.append({"id": rid, "host": host, "namespace": ns, "priority": prio,
                       "payload_class": pclass, "params": own})
    if problems:
        raise InventoryError(problems)
    return {"fleet": fleet, "ros_domain_id": domain, "release": release, "model": model,
            "redis": redis, "params": fleet_params, "payload_classes": classes,
            "robots": robots}


# -- rendering --------------------------------------------------------------------------------

def _merge(base: Dict[str, Dict], *layers: Dict[str, Dict]) -> Dict[str, Dict]:
    out = {node: dict(p) for node, p in base.items()}
    for layer in layers:
        for node, flat in layer.items():
            out.setdefault(node, {}).update(flat)
    return out


def robot_params(inv: Dict[str, Any], robot: Dict[str, Any],
                 base: Dict[str, Dict]) -> Dict[str, Dict]:
    """Flattened parameters per node: base < fleet params < payload class < robot params <
    the inventory's identity fields."""
    redis = inv["redis"]
    identity = {
        "fleet_client": {
            "fleet": inv["fleet"], "redis_url": redis["url"], "username": redis["username"],
            "password_file": redis["password_file"],
            # no password from the environment: the file is the only source
            "password_env": "" if redis["password_file"] else "WM_REDIS_PASSWORD",
            "tls_ca_file": redis["tls_ca_file"], "tls_cert_file": redis["tls_cert_file"],
            "tls_key_file": redis["tls_key_file"],
            "sentinels": redis["sentinels"] or [""],
            "sentinel_master": redis["sentinel_master"], "cluster": redis["cluster"],
            "priority": robot["priority"], "model_version": inv["model"]["dirname"],
        },
        "planner": {"world_model_artifact": MODEL_CURRENT},
    }
    if "monitor" in base or "monitor" in NODE_SPECS:
        # the monitor measures the model the planner drives with
        identity["monitor"] = {"world_model_artifact": MODEL_CURRENT}
    pclass = inv["payload_classes"].get(robot["payload_class"], {}) \
        if robot["payload_class"] else {}
    return _merge(base, inv["params"], pclass, robot["params"], identity)


def load_base_params(path: str) -> Dict[str, Dict]:
    """The base parameter file ({/**/node: {ros__parameters: ...}}), flattened per node and
    checked like tests/test_config_files.py checks it."""
    with open(path, "r", encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    problems: List[str] = []
    out: Dict[str, Dict] = {}
    if not isinstance(doc, dict):
        raise InventoryError(["%s: not a parameter file" % path])
    for key, body in doc.items():
        node = key[len("/**/"):] if isinstance(key, str) and key.startswith("/**/") else None
        if node is None or not isinstance(body, dict) or "ros__parameters" not in body:
            problems.append("%s: %r: expected /**/<node>: ros__parameters:" % (path, key))
            continue
        params = {node: body["ros__parameters"]}
        flat = check_node_params(params, os.path.basename(path), problems, reserved=False)
        out.update(flat)
    if problems:
        raise InventoryError(problems)
    return out


class _Dumper(yaml.SafeDumper):
    """Lists of scalars in flow style ([0.35, 0.275, ...]), everything else block style."""


def _represent_list(dumper: yaml.SafeDumper, data: list) -> Any:
    flow = all(not isinstance(v, (dict, list)) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


class _Quoted(str):
    """A string value of a ROS parameter file, always quoted: rcl_yaml_param_parser infers the
    type of a plain scalar (yes/on -> bool, 1.0 -> double), a quoted one stays a string."""


def _represent_quoted(dumper: yaml.SafeDumper, data: "_Quoted") -> Any:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(data), style="'")


_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(_Quoted, _represent_quoted)


def _yaml(data: Any, sort_keys: bool = True) -> str:
    return yaml.dump(data, Dumper=_Dumper, default_flow_style=False, sort_keys=sort_keys,
                     width=100, allow_unicode=False)


def ros_typed(spec: Optional[Param], value: Any) -> Any:
    """`value` with the type the node declares: rclpy refuses an integer for a double
    parameter (InvalidParameterTypeException at declare time), so 5 becomes 5.0 where the
    default is a float (also inside numeric vectors); strings are written quoted."""
    if isinstance(value, str):
        return _Quoted(value)
    if isinstance(value, (list, tuple)) and any(isinstance(v, str) for v in value):
        return [_Quoted(v) if isinstance(v, str) else v for v in value]
    if spec is None:
        return value
    d = spec.default
    if isinstance(d, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if (isinstance(d, (list, tuple)) and d and all(isinstance(v, float) for v in d)
            and isinstance(value, (list, tuple))):
        return [float(v) if isinstance(v, int) and not isinstance(v, bool) else v
                for v in value]
    return value


def render_params(params: Dict[str, Dict], header: str) -> str:
    doc = {}
    for node, flat in sorted(params.items()):
        specs = {p.name: p for p in NODE_SPECS[node]}
        typed = {k: ros_typed(specs.get(k), v) for k, v in sorted(flat.items())}
        doc["/**/%s" % node] = {"ros__parameters": unflatten(typed)}
    return header + _yaml(doc)


def render_env(inv: Dict[str, Any], robot: Dict[str, Any], header: str) -> str:
    env = [
        ("WM_ROBOT_ID", robot["id"]),
        ("WM_FLEET", inv["fleet"]),
        ("WM_NAMESPACE", robot["namespace"]),
        ("WM_PARAMS_FILE", ROBOT_PATHS["wm_params_path"]),
        ("WM_WORLD_MODEL", MODEL_CURRENT),
        ("WM_REDIS_URL", inv["redis"]["url"]),
        ("WM_REDIS_PASSWORD_FILE", inv["redis"]["password_file"]),
        ("WM_RELEASE", inv["release"]["version"]),
        ("WM_INSTALL_METHOD", inv["release"]["method"]),
        ("ROS_DOMAIN_ID", str(inv["ros_domain_id"])),
    ]
    if inv["release"]["method"] == "docker":
        # wm-robot-docker.service runs ${WM_IMAGE}
        env.append(("WM_IMAGE", inv["release"]["image"]))
    else:
        # jetson/ros_entrypoint.sh sources this workspace (the tarball's install/ tree)
        env.append(("WM_WS_SETUP", WORKSPACE_CURRENT + "/install/setup.bash"))
    lines = []
    for k, v in env:
        if not SAFE_VALUE_RE.match(v):  # validated above; a guard for the file's syntax
            raise InventoryError(["%s: %s=%r cannot go into an EnvironmentFile"
                                  % (robot["id"], k, v)])
        lines.append("%s=%s" % (k, v))
    return header + "\n".join(lines) + "\n"


def render(inv: Dict[str, Any], base: Dict[str, Dict], inventory_name: str,
           models_dir_var: Optional[str] = None) -> Dict[str, str]:
    """{relative path: content} of every output file."""
    header = ("# Generated by deploy/generate.py from %s; do not edit (edit the inventory and "
              "re-run).\n" % inventory_name)
    files: Dict[str, str] = {}
    group_vars: Dict[str, Any] = dict(ROBOT_PATHS)
    group_vars.update({
        "wm_fleet": inv["fleet"],
        "wm_install_method": inv["release"]["method"],
        "wm_release": inv["release"]["version"],
        "wm_image": inv["release"]["image"],
        "wm_model_name": inv["model"]["name"],
        "wm_model_version": inv["model"]["version"],
        "wm_model_metadata_sha256": inv["model"]["metadata_sha256"],
        "wm_redis_password_file": inv["redis"]["password_file"],
        "wm_tls_files": {k: inv["redis"][k] for k in ("tls_ca_file", "tls_cert_file",
                                                       "tls_key_file") if inv["redis"][k]},
    })
    if models_dir_var:
        group_vars["wm_model_src_dir"] = models_dir_var
    hosts = {}
    for r in inv["robots"]:
        hosts[r["id"]] = None
        host_vars = {
            "ansible_host": r["host"],
            "wm_robot_id": r["id"],
            "wm_namespace": r["namespace"],
            "wm_priority": r["priority"],
            "wm_payload_class": r["payload_class"] or "",
            "wm_params_src": "{{ inventory_dir }}/robots/%s/robot.yaml" % r["id"],
            "wm_env_src": "{{ inventory_dir }}/robots/%s/robot.env" % r["id"],
        }
        files["host_vars/%s.yml" % r["id"]] = header + _yaml(host_vars)
        params = robot_params(inv, r, base)
        files["robots/%s/robot.yaml" % r["id"]] = render_params(
            params, header + "# Robot %s (%s): parameters of perception, planner, "
            "collision_monitor and fleet_client.\n" % (r["id"], r["namespace"]))
        files["robots/%s/robot.env" % r["id"]] = render_env(
            inv, r, header + "# EnvironmentFile of wm-robot.service (%s). No secrets: the Redis "
            "password is read from WM_REDIS_PASSWORD_FILE.\n" % ROBOT_PATHS["wm_env_path"])
    # hosts keep the inventory's order: serial batches (the canary first) follow it
    inventory = {"all": {"children": {GROUP: {"hosts": hosts, "vars": group_vars}}}}
    files["hosts.yml"] = header + _yaml(inventory, sort_keys=False)
    return files


def write(files: Dict[str, str], out: str) -> None:
    """Write the files into `out`, replacing what a previous run wrote there (a removed robot's
    files go too). Refuses a non-empty directory this tool did not create."""
    if os.path.isdir(out) and os.listdir(out):
        if not os.path.isfile(os.path.join(out, MARKER)):
            raise InventoryError(["%s exists and was not written by generate.py; choose an "
                                  "empty or new directory" % out])
        for sub in ("host_vars", "robots"):
            shutil.rmtree(os.path.join(out, sub), ignore_errors=True)
        for name in ("hosts.yml", MARKER):
            if os.path.exists(os.path.join(out, name)):
                os.remove(os.path.join(out, name))
    os.makedirs(out, exist_ok=True)
    for rel, text in sorted(files.items()):
        path = os.path.join(out, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
    with open(os.path.join(out, MARKER), "w", encoding="utf-8") as f:
        f.write("deploy/generate.py output; the whole directory is rewritten on each run\n")


def generate(inventory_path: str, out: Optional[str], base_params: str = DEFAULT_BASE_PARAMS,
             models_dir: str = DEFAULT_MODELS_DIR,
             models_dir_var: Optional[str] = None) -> Dict[str, str]:
    with open(inventory_path, "r", encoding="utf-8") as f:
        try:
            raw = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise InventoryError(["%s: not valid YAML: %s" % (inventory_path, e)]) from None
    inv = validate(raw, models_dir)
    base = load_base_params(base_params)
    files = render(inv, base, os.path.basename(inventory_path), models_dir_var)
    if out is not None:
        write(files, out)
    return files


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inventory", help="fleet inventory YAML (see deploy/inventory.example.yaml)")
    ap.add_argument("--out", help="output directory (hosts.yml, host_vars/, robots/)")
    ap.add_argument("--check", action="store_true", help="validate only, write nothing")
    ap.add_argument("--base-params", default=DEFAULT_BASE_PARAMS,
                    help="base parameter file (default: config/robot.yaml)")
    ap.add_argument("--models-dir", default=None,
                    help="directory holding worldmodel-<version>/ (default: "
                         "src/wm_world_model/models); also becomes the playbook's "
                         "wm_model_src_dir")
    args = ap.parse_args(argv)
    if not args.check and not args.out:
        ap.error("--out DIR or --check")
    models_dir = args.models_dir or DEFAULT_MODELS_DIR
    models_var = os.path.abspath(args.models_dir) if args.models_dir else None
    try:
        files = generate(args.inventory, None if args.check else args.out, args.base_params,
                         models_dir, models_var)
    except InventoryError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    except OSError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    robots = sorted({p.split("/")[1] for p in files if p.startswith("robots/")})
    if args.check:
        print("inventory OK: %d robots (%s)" % (len(robots), ", ".join(robots)))
    else:
        print("wrote %d files for %d robots to %s" % (len(files), len(robots), args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
