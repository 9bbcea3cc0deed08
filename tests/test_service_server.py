"""The world-model service as it is deployed: `python -m wm_service` (uvicorn) on a free
loopback port, a real redis-server holding robot entries written by the robots' own
FleetClient, the service reading them as a read-only ACL user, schemathesis generating
requests from the service's own OpenAPI spec, and mutual TLS with certificates made on the
fly. No mocks."""
from __future__ import annotations

import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis
from pki import make_pki, write_private

from wm_eval.redis_server import RedisServer
from wm_fleet import schema as fleet_schema
from wm_fleet.client import FleetClient
from wm_service.fleet_state import READ_ONLY_ACL
from wm_service.process import ServiceProcess

REPO = Path(__file__).resolve().parents[1]
TOKEN = "server-test-token-0123456789abcdef"
FOOT = ((0.4, 0.3), (-0.4, 0.3), (-0.4, -0.3), (0.4, -0.3))
FLEET = "site1"


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("service")
    os.chmod(d, 0o700)
    return d


@pytest.fixture(scope="module")
def fleet_redis(secrets_dir):
    """A redis-server with the robots' (admin) password and the service's read-only user."""
    with RedisServer() as server:
        admin = redis.Redis(port=server.port, password=server.password)
        ro_password = "ro-" + server.password[::-1]
        admin.execute_command("ACL", "SETUSER", "wm-service-ro", "reset", "on",
                              ">" + ro_password, *READ_ONLY_ACL.split())
        server.ro_password_file = write_private(secrets_dir / "redis-password",
                                                ro_password + "\n")
        server.admin = admin
        yield server


def publish(server, rid, x, y, yaw=0.0, v=0.0, path=()):
    """A robot's entry, written as the robots write it (FleetClient with its own password)."""
    client = FleetClient(redis.Redis(port=server.port, password=server.password), FLEET, rid,
                         ttl=30.0)
    now = time.time()
    traj = tuple((100.0 + t, px, py) for t, px, py in path)
    assert client.publish(fleet_schema.RobotEntry(rid, "map", 100.0, now, (x, y, yaw), (v, 0.0),
                                                  FOOT, 0, traj, "worldmodel-1.0.0"))


@pytest.fixture(scope="module")
def service(fleet_redis, secrets_dir):
    token = write_private(secrets_dir / "token", TOKEN + "\n")
    svc = ServiceProcess({"auth_token_file": token, "fleet": FLEET, "max_body_bytes": 65536,
                   "redis": {"url": "redis://127.0.0.1:%d/0" % fleet_redis.port,
                             "username": "wm-service-ro",
                             "password_file": fleet_redis.ro_password_file}},
                  secrets_dir).start()
    yield svc
    # SIGTERM: a clean shutdown (uvicorn re-raises the signal once it has shut down)
    assert svc.stop() in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in svc.log.read_text()
    assert TOKEN not in svc.log.read_text()


def api(svc):
    return httpx.Client(base_url=svc.url, headers={"Authorization": "Bearer " + TOKEN},
                        timeout=10.0)


def test_health_and_models_over_tcp(service):
    with api(service) as c:
        h = c.get("/healthz").json()
        assert h == {"status": "ok", "models": ["kinematic", "worldmodel-1.0.0"],
                     "fleet": "ok", "batcher": "running"}
        assert c.get("/v1/models").json()["default"] == "worldmodel-1.0.0"
        assert httpx.get(service.url + "/v1/models").status_code == 401


def test_what_if_for_a_robot_read_from_the_fleet(service, fleet_redis):
    publish(fleet_redis, "robot1", 12.0, 4.0, yaw=1.2, v=0.4)
    with api(service) as c:
        r = c.post("/v1/predict", json={"robot_id": "robot1", "commands": [[0.8, 0.0]] * 10})
        assert r.status_code == 200, r.text
        start = r.json()["states"][0]
        assert start[:3] == pytest.approx([12.0, 4.0, 1.2], abs=1e-6)
        assert start[3] == pytest.approx(0.4, abs=1e-6)
        assert c.post("/v1/predict", json={"robot_id": "robot404", "commands": [[0, 0]]}
                      ).status_code == 404


def test_plan_around_the_fleets_neighbours(service, fleet_redis):
    """robot2 stands in robot1's way (its shared path says it stays): with
    fleet_neighbours the plan keeps clear of it, without it drives through."""
    publish(fleet_redis, "robot1", 0.0, 0.0, v=0.5)
    publish(fleet_redis, "robot2", 1.0, 0.0, path=[(0.0, 1.0, 0.0), (1.0, 1.0, 0.0)])
    with api(service) as c:
        body = {"robot_id": "robot1", "goal": {"x": 5.0, "y": 0.0}, "model": "kinematic"}
        alone = c.post("/v1/plan", json=body).json()["trajectory"]
        fleet = c.post("/v1/plan", json=dict(body, fleet_neighbours=True)).json()["trajectory"]
    near = min(abs(p[0] - 1.0) + abs(p[1]) for p in alone)
    gap = min(((p[0] - 1.0) ** 2 + p[1] ** 2) ** 0.5 for p in fleet)
    assert near < 0.6 and gap > 0.6


def test_the_services_redis_user_cannot_write(fleet_redis):
    ro = redis.Redis(port=fleet_redis.port, username="wm-service-ro",
                     password=Path(fleet_redis.ro_password_file).read_text().strip())
    assert ro.ping()
    prefix = fleet_schema.keys(FLEET)[0]
    for write in (lambda: ro.set(prefix + "robot1", b"x"), lambda: ro.delete(prefix + "robot1"),
                  lambda: ro.zrem(fleet_schema.keys(FLEET)[1], "robot1"),
                  lambda: ro.publish(fleet_schema.keys(FLEET)[2], "robot1"),
                  lambda: ro.config_get("*"), lambda: ro.get("other:key")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            write()


def test_schemathesis_finds_no_server_error_and_no_spec_violation(service, secrets_dir):
    """schemathesis generates requests from the service's own /openapi.json (valid ones,
    and invalid ones: wrong types, missing fields, garbage bodies) and checks every answer:
    no 5xx, status codes, content types and bodies as documented, invalid data refused.
    Left out: positive_data_acceptance, because the spec cannot say that a neighbour's
    times must increase, nor the deployment's max_horizon (below the schema's 100): such
    schema-valid requests get a 422 with the reason."""
    out = subprocess.run(
        [str(Path(sys.executable).parent / "schemathesis"), "run",
         service.url + "/openapi.json", "--checks", "all",
         "--exclude-checks", "positive_data_acceptance",
         "-H", "Authorization: Bearer " + TOKEN, "--max-examples", "100", "--seed", "1",
         "--workers", "1", "--suppress-health-check", "all", "--request-timeout", "20"],
        capture_output=True, text=True, timeout=240, cwd=str(secrets_dir))
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "generated" in out.stdout and "5/5" in out.stdout


def test_redis_down_is_a_503_and_the_service_stays_up(service, fleet_redis, secrets_dir):
    """Last in this module: stops the fleet's Redis. A what-if with a state still works."""
    os.kill(fleet_redis.proc.pid, signal.SIGSTOP)
    try:
        with api(service) as c:
            r = c.post("/v1/predict", json={"robot_id": "robot1", "commands": [[0.5, 0.0]]})
            assert r.status_code == 503 and "unavailable" in r.json()["detail"]
            h = c.get("/healthz")
            assert h.status_code == 200 and h.json()["fleet"] == "unavailable"
            r = c.post("/v1/predict", json={"state": {"x": 0, "y": 0, "yaw": 0},
                                            "commands": [[0.5, 0.0]]})
            assert r.status_code == 200
    finally:
        os.kill(fleet_redis.proc.pid, signal.SIGCONT)


def test_mutual_tls(secrets_dir):
    pki = make_pki(str(secrets_dir))
    svc = ServiceProcess({"tls_cert_file": pki["server_cert"], "tls_key_file": pki["server_key"],
                   "tls_client_ca_file": pki["ca"], "models": [],
                   "default_model": "kinematic"}, secrets_dir, scheme="https")
    with_cert = ssl.create_default_context(cafile=pki["ca"])
    with_cert.load_cert_chain(pki["client_cert"], pki["client_key"])
    svc.start(ready=lambda: httpx.get(svc.url + "/healthz", verify=with_cert, timeout=1.0))
    try:
        assert httpx.get(svc.url + "/healthz", verify=with_cert).status_code == 200
        without = ssl.create_default_context(cafile=pki["ca"])
        with pytest.raises((httpx.HTTPError, ssl.SSLError)):   # no client certificate
            httpx.get(svc.url + "/healthz", verify=without, timeout=5.0).raise_for_status()
        with pytest.raises(httpx.HTTPError):                    # plain HTTP
            httpx.get(svc.url.replace("https", "http") + "/healthz", timeout=5.0) \
                .raise_for_status()
    finally:
        svc.stop()


def test_refuses_to_start_on_a_corrupt_artifact_or_a_missing_token(secrets_dir):
    models = secrets_dir / "models"
    shutil.copytree(REPO / "src/wm_world_model/models/worldmodel-1.0.0",
                    models / "worldmodel-1.0.0")
    with open(models / "worldmodel-1.0.0" / "weights.npz", "r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01\x02")
    for cfg, why in (({"models_dir": str(models)}, "checksum mismatch for weights.npz"),
                     ({"auth_token_file": str(secrets_dir / "absent"), "models": [],
                       "default_model": "kinematic"}, "No such file")):
        svc = ServiceProcess(cfg, secrets_dir)
        with pytest.raises(RuntimeError, match="exited 2"):
            svc.start(timeout=60.0)
        assert why in svc.log.read_text()
