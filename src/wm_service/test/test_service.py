"""The world-model service in process: batched predictions equal the planner's own rollouts,
the dynamic batcher routes every row back, /v1/plan is the planner's MPPI and idempotent, and
every kind of bad request gets its 4xx (no model upload, no NaN, no unbounded work). The real
server process (uvicorn over TCP, TLS, Redis, schemathesis) is in tests/test_service_server.py.
"""
from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from fastapi.testclient import TestClient

from wm_planner.configure import build_optimizer
from wm_planner.configure import node_params_from_yaml
from wm_planner.models import Goal
from wm_service.app import create_app
from wm_service.batcher import DynamicBatcher
from wm_service.config import ServiceConfig, load_config
from wm_service.config import shipped_robot_yaml
from wm_service.engine import KINEMATIC, Engine, PredictItem, service_planner_params
from wm_service.openapi import SPEC_FILE, generate
from wm_world_model.state import RobotState

WM = "worldmodel-1.0.0"
TOKEN = "a-test-token-of-32-characters-xx"


@pytest.fixture(scope="module")
def engine():
    return Engine(ServiceConfig())


@pytest.fixture(scope="module")
def client(engine, tmp_path_factory):
    token = tmp_path_factory.mktemp("secret") / "token"
    token.write_text(TOKEN + "\n")
    cfg = ServiceConfig(auth_token_file=str(token), max_horizon=20, max_body_bytes=4096,
                        batch_window_ms=5.0)
    with TestClient(create_app(cfg, engine=engine)) as c:
        c.headers["Authorization"] = "Bearer " + TOKEN
        yield c


def commands(h=10, v=0.6, w=0.3):
    return [[v, w]] * h


# ---------------------------------------------------------------- engine
def test_batched_predictions_equal_the_planners_rollouts(engine):
    """Rows of different robots in one call give what the planner's motion model predicts
    for each robot alone (same artifact, same scripted rollout)."""
    rng = np.random.default_rng(3)
    items = []
    for _ in range(7):
        state = (rng.uniform(-50, 50), rng.uniform(-50, 50), rng.uniform(-3, 3),
                 rng.uniform(0, 1), rng.uniform(-0.5, 0.5))
        items.append(PredictItem(WM, state, rng.uniform([-0.5, -1], [1.5, 1], (10, 2)), None))
    batch = engine.predict_batch(items)
    model = engine.models[WM]
    for item, p in zip(items, batch):
        assert p.trusted and p.model == WM and p.version == "1.0.0"
        alone = model.rollout(RobotState(*item.state), item.commands, engine.dt)
        np.testing.assert_allclose(p.states[:, :3], alone, atol=1e-5)
        np.testing.assert_allclose(p.states[0], item.state, atol=1e-6)


def test_payload_changes_the_world_models_prediction_not_kinematics(engine):
    state = (0.0, 0.0, 0.0, 0.0, 0.0)
    u = np.array(commands(10, 1.0, 0.0))
    light, heavy = engine.predict_batch([PredictItem(WM, state, u, 0.0),
                                         PredictItem(WM, state, u, 150.0)])
    assert abs(light.states[-1, 0] - heavy.states[-1, 0]) > 1e-3
    k1, k2 = engine.predict_batch([PredictItem(KINEMATIC, state, u, 0.0),
                                   PredictItem(KINEMATIC, state, u, 150.0)])
    np.testing.assert_array_equal(k1.states, k2.states)
    assert k1.states[-1, 0] == pytest.approx(1.0)     # 1 m/s for 1 s, straight


def test_mixed_horizons_and_models_in_one_batch(engine):
    s = (1.0, 2.0, 0.3, 0.0, 0.0)
    items = [PredictItem(WM, s, np.array(commands(5)), None),
             PredictItem(KINEMATIC, s, np.array(commands(12)), None),
             PredictItem(WM, s, np.array(commands(12)), None)]
    out = engine.predict_batch(items)
    assert [p.states.shape[0] for p in out] == [6, 13, 13]
    assert [p.model for p in out] == [WM, KINEMATIC, WM]
    np.testing.assert_allclose(out[0].states[:6], out[2].states[:6], atol=1e-6)


def test_plan_is_the_planners_mppi_and_reproducible(engine):
    """The service's plan equals an MPPI built from the planner's parameters with the same
    seed; two calls give the same answer whatever ran in between."""
    state, goal = RobotState(0.0, 0.0, 0.0, 0.3, 0.0), Goal(4.0, 1.0)
    a = engine.plan(WM, state, goal, seed=7)
    engine.plan(KINEMATIC, state, Goal(-3.0, 0.0), seed=1)
    b = engine.plan(WM, state, goal, seed=7)
    np.testing.assert_array_equal(a["controls"], b["controls"])
    ref = build_optimizer(engine.params, motion_model=engine.models[WM])
    ref.reset(seed=7)
    np.testing.assert_allclose(a["controls"], ref.plan(state, goal).controls, atol=1e-9)
    assert a["status"] == "ok" and a["trajectory"].shape == (11, 3)


def test_plan_keeps_clear_of_an_obstacle_on_the_straight_line(engine):
    """An obstacle the unobstructed plan would touch (footprint within robot_radius): the
    plan with it keeps the robot's radius clear (it brakes or steers)."""
    state, goal = RobotState(0.0, 0.0, 0.0, 0.5, 0.0), Goal(4.0, 0.0)
    radius = engine.params["robot_radius"]

    def gap(traj):
        return float(np.hypot(traj[:, 0] - 0.9, traj[:, 1]).min()) - 0.2
    assert gap(engine.plan(KINEMATIC, state, goal, seed=0)["trajectory"]) < radius
    blocked = engine.plan(KINEMATIC, state, goal, obstacles=[(0.9, 0.0, 0.2)], seed=0)
    assert blocked["status"] == "ok" and gap(blocked["trajectory"]) >= radius


def test_plans_with_the_robots_planner_parameters(engine):
    """/v1/plan runs what the robots run: config/robot.yaml's planner section (critics and
    weights included), with only the time budget and seed set by the service."""
    robot = node_params_from_yaml(shipped_robot_yaml(), "planner")
    assert "fleet" in robot["critics"]
    for name, value in robot.items():
        if name not in ("time_budget_ms", "seed"):
            assert engine.params[name] == value, name
    assert engine.params["time_budget_ms"] >= 1000.0
    bare = service_planner_params(ServiceConfig(planner_params_file="none",
                                                planner_params={"horizon": 15}))
    assert bare["horizon"] == 15 and "fleet" not in bare["critics"]


def test_config_refuses_what_cannot_work(tmp_path):
    for bad in ({"port": 0}, {"max_horizon": 500}, {"max_batch": 0}, {"unknown": 1},
                {"default_model": "worldmodel-9.9.9"}, {"tls_key_file": "k.pem"},
                {"batch_window_ms": float("nan")}):
        with pytest.raises(ValueError):
            ServiceConfig.from_dict(bad)
    with pytest.raises(ValueError, match="unknown planner parameter"):
        service_planner_params(ServiceConfig(planner_params={"horizon_typo": 3}))
    with pytest.raises(ValueError, match="expected a number"):
        service_planner_params(ServiceConfig(planner_params={"temperature": "hot"}))
    short = tmp_path / "token"
    short.write_text("short\n")
    with pytest.raises(ValueError, match="shorter than 16"):
        ServiceConfig(auth_token_file=str(short)).read_token()
    f = tmp_path / "s.yaml"
    f.write_text("port: 9000\nbatch_window_ms: 1.5\nmodels: []\ndefault_model: kinematic\n")
    assert load_config(str(f)).port == 9000


# ---------------------------------------------------------------- batcher
def test_batcher_groups_concurrent_requests_and_routes_each_row_back():
    calls = []

    def run(items):
        calls.append(len(items))
        time.sleep(0.01)
        return [i * 10 for i in items]

    async def main(window, max_batch):
        ex = ThreadPoolExecutor(1)
        b = DynamicBatcher(run, ex, window_s=window, max_batch=max_batch)
        b.start()
        out = await asyncio.gather(*(b.submit(i) for i in range(40)))
        await b.stop()
        ex.shutdown()
        return out, b.batches

    out, batches = asyncio.run(main(0.005, 16))
    assert out == [i * 10 for i in range(40)]
    assert batches <= 5 and max(calls) <= 16
    calls.clear()
    out, batches = asyncio.run(main(0.005, 1))        # one request per call
    assert out == [i * 10 for i in range(40)] and batches == 40 and set(calls) == {1}


def test_batcher_gives_every_caller_the_batch_error_and_keeps_running():
    def run(items):
        if 3 in items:
            raise RuntimeError("model call failed")
        return items

    async def main():
        ex = ThreadPoolExecutor(1)
        b = DynamicBatcher(run, ex, window_s=0.02, max_batch=8)
        b.start()
        first = await asyncio.gather(*(b.submit(i) for i in range(5)), return_exceptions=True)
        second = await b.submit(7)
        await b.stop()
        ex.shutdown()
        return first, second, b.running

    first, second, running = asyncio.run(main())
    assert all(isinstance(r, RuntimeError) for r in first)
    assert second == 7 and not running


# ---------------------------------------------------------------- HTTP
def test_predict_over_http(client, engine):
    body = {"state": {"x": 3.0, "y": -1.0, "yaw": 1.0, "v": 0.2}, "commands": commands(),
            "payload_kg": 40.0}
    r = client.post("/v1/predict", json=body)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["model"] == WM and doc["trusted"] and len(doc["states"]) == 11
    ref = engine.predict_batch([PredictItem(WM, (3.0, -1.0, 1.0, 0.2, 0.0),
                                            np.array(commands()), 40.0)])[0]
    np.testing.assert_allclose(doc["states"], ref.states, atol=1e-9)
    assert client.post("/v1/predict", json=body).json() == doc        # idempotent


def test_concurrent_http_requests_share_model_calls(client):
    def ask(i):
        return client.post("/v1/predict", json={"state": {"x": float(i), "y": 0.0, "yaw": 0.0},
                                                "commands": commands(5, 1.0, 0.0)})

    batcher = client.app.app.state.batcher
    before = batcher.batches
    with ThreadPoolExecutor(12) as pool:
        rs = list(pool.map(ask, range(24)))
    assert all(r.status_code == 200 for r in rs)
    # each answer belongs to its own request: it starts where that request asked
    assert [r.json()["states"][0][0] for r in rs] == [float(i) for i in range(24)]
    assert batcher.batches - before < 24


def test_plan_over_http_with_a_neighbour_and_obstacles(client):
    body = {"model": KINEMATIC, "state": {"x": 0.0, "y": 0.0, "yaw": 0.0, "v": 0.4},
            "goal": {"x": 4.0, "y": 0.0}, "seed": 3,
            "obstacles": [{"x": 2.0, "y": 1.5, "radius": 0.3}],
            "neighbours": [{"id": "robot9", "radius": 0.4, "times": [0.0, 1.0],
                            "xy": [[1.2, 0.0], [1.2, 0.0]]}]}
    r = client.post("/v1/plan", json=body)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["status"] in ("ok", "collision") and len(doc["controls"]) == 10
    traj = np.array(doc["trajectory"])
    assert np.hypot(traj[:, 0] - 1.2, traj[:, 1]).min() > 0.4     # around the standing robot
    assert client.post("/v1/plan", json=body).json()["controls"] == doc["controls"]


def test_models_health_and_metrics(client):
    models = client.get("/v1/models").json()
    assert models["default"] == WM
    wm = [m for m in models["models"] if m["name"] == WM][0]
    assert wm["version"] == "1.0.0" and len(wm["checksums"]["weights.npz"]) == 64
    assert "path" not in wm
    h = client.get("/healthz", headers={"Authorization": ""})
    assert h.status_code == 200 and h.json()["batcher"] == "running"
    text = client.get("/metrics", headers={"Authorization": ""}).text
    assert 'wm_service_requests_total{code="200",method="POST",route="/v1/predict"}' in text
    assert "wm_service_batch_size_count" in text and 'wm_service_model_loaded{model="%s"} 1.0' \
        % WM in text


@pytest.mark.parametrize("headers", [{"Authorization": ""}, {"Authorization": "Bearer nope"},
                                     {"Authorization": "Basic " + TOKEN}])
def test_api_needs_the_token(client, headers):
    for method, path, body in (("post", "/v1/predict", {"state": {"x": 0, "y": 0, "yaw": 0},
                                                        "commands": [[0, 0]]}),
                               ("get", "/v1/models", None)):
        r = getattr(client, method)(path, json=body, headers=headers) if body else \
            getattr(client, method)(path, headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"


def test_no_model_can_be_uploaded_or_switched(client):
    for method in ("post", "put", "patch", "delete"):
        assert getattr(client, method)("/v1/models").status_code == 405
    r = client.post("/v1/predict", json={"state": {"x": 0, "y": 0, "yaw": 0},
                                         "commands": [[0, 0]], "model": "../../etc/passwd"})
    assert r.status_code == 422
    r = client.post("/v1/predict", json={"state": {"x": 0, "y": 0, "yaw": 0},
                                         "commands": [[0, 0]], "model": "worldmodel-9.9.9"})
    assert r.status_code == 404 and "worldmodel-9.9.9" in r.json()["detail"]


BAD_PREDICTS = {
    "nan": b'{"state": {"x": NaN, "y": 0, "yaw": 0}, "commands": [[0, 0]]}',
    "infinity": b'{"state": {"x": 0, "y": 0, "yaw": 0}, "commands": [[Infinity, 0]]}',
    "not json": b'{"state": ',
    "unknown field": b'{"state": {"x": 0, "y": 0, "yaw": 0}, "commands": [[0, 0]], "x": 1}',
    "no commands": b'{"state": {"x": 0, "y": 0, "yaw": 0}, "commands": []}',
    "three numbers": b'{"state": {"x": 0, "y": 0, "yaw": 0}, "commands": [[0, 0, 0]]}',
    "absurd speed": b'{"state": {"x": 0, "y": 0, "yaw": 0}, "commands": [[99, 0]]}',
    "both sources": b'{"state": {"x": 0, "y": 0, "yaw": 0}, "robot_id": "r1", '
                    b'"commands": [[0, 0]]}',
    "no source": b'{"commands": [[0, 0]]}',
    "negative payload": b'{"state": {"x": 0, "y": 0, "yaw": 0}, "commands": [[0, 0]], '
                        b'"payload_kg": -1}',
    "far away": b'{"state": {"x": 1e9, "y": 0, "yaw": 0}, "commands": [[0, 0]]}',
    "over max_horizon": json.dumps({"state": {"x": 0, "y": 0, "yaw": 0},
                                    "commands": commands(21)}).encode(),
    "not an object": b'[1, 2]',
    "bool as a number": b'{"state": {"x": 0, "y": 0, "yaw": 0}, "commands": [[0, 0]], '
                        b'"payload_kg": true}',
    "string as a number": b'{"state": {"x": "1", "y": 0, "yaw": 0}, "commands": [[0, 0]]}',
}


@pytest.mark.parametrize("name", sorted(BAD_PREDICTS))
def test_bad_requests_get_a_clear_4xx(client, name):
    r = client.post("/v1/predict", content=BAD_PREDICTS[name],
                    headers={"content-type": "application/json"})
    assert r.status_code == 422, (name, r.status_code, r.text)
    assert r.json()["detail"]


def test_rejections_are_logged_throttled_and_counted(client, caplog):
    bad = {"state": {"x": 0, "y": 0, "yaw": 0}, "commands": []}
    client.app._rejected.clear()      # the guard's throttle: start this test's window
    with caplog.at_level("WARNING", logger="wm_service"):
        for _ in range(5):
            assert client.post("/v1/plan", json=bad).status_code == 422
    lines = [r.getMessage() for r in caplog.records if "/v1/plan: answered 422" in
             r.getMessage()]
    assert lines == ["/v1/plan: answered 422 (1 so far)"]     # 5 rejections, one line
    text = client.get("/metrics").text
    count = [line for line in text.splitlines() if line.startswith(
        'wm_service_requests_total{code="422",method="POST",route="/v1/plan"}')]
    assert count and float(count[0].split()[-1]) >= 5


def test_oversized_and_fleet_requests_without_a_fleet(client):
    big = json.dumps({"state": {"x": 0, "y": 0, "yaw": 0},
                      "commands": commands(20), "pad": "x" * 5000}).encode()
    r = client.post("/v1/predict", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "4096" in r.json()["detail"]

    def chunks():      # no Content-Length: counted while read
        for _ in range(10):
            yield b" " * 1000
    r = client.post("/v1/predict", content=chunks(), headers={"content-type":
                                                              "application/json"})
    assert r.status_code == 413
    r = client.post("/v1/predict", json={"robot_id": "robot1", "commands": [[0, 0]]})
    assert r.status_code == 404 and "no fleet" in r.json()["detail"]
    r = client.post("/v1/plan", json={"state": {"x": 0, "y": 0, "yaw": 0}, "goal": {
        "x": 1, "y": 0}, "fleet_neighbours": True})
    # the same shape as FastAPI's own 422s (what the spec documents)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "fleet_neighbours"]
    r = client.post("/v1/plan", json={"state": {"x": 0, "y": 0, "yaw": 0}, "goal": {
        "x": 1, "y": 0}, "neighbours": [{"id": "r2", "radius": 0.3, "times": [1, 0],
                                         "xy": [[0, 0], [1, 1]]}]})
    assert r.status_code == 422 and "increase" in r.text


def test_checked_in_openapi_spec_matches_the_code():
    with open(SPEC_FILE, encoding="utf-8") as f:
        checked_in = f.read()
    assert generate() == checked_in, \
        "the API changed: run `python -m wm_service.openapi --write` and commit openapi.json"
    spec = json.loads(checked_in)
    assert {"/v1/predict", "/v1/plan", "/v1/models", "/healthz", "/metrics"} <= set(spec["paths"])
    assert set(spec["paths"]["/v1/models"]) == {"get"}


def test_readme_documents_every_setting():
    from dataclasses import fields
    from pathlib import Path

    text = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    table = text[text.index("| setting | default | meaning |"):]
    table = table[:table.index("\n\n")]
    missing = [f.name for f in fields(ServiceConfig) if "`%s`" % f.name not in table]
    assert not missing, "README's service settings table lacks %s" % missing
