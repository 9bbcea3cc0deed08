"""The HTTP face of the world-model service (FastAPI): routes, limits, auth and metrics around
wm_service.engine. One process runs one model worker thread; scale out with replicas (the
Kubernetes HPA in deploy/k8s), which is safe because the service keeps no state between
requests (a plan depends only on its request and seed).

    POST /v1/predict   state (or robot_id) + commands -> predicted states   (dynamically batched)
    POST /v1/plan      state (or robot_id) + goal + neighbours/obstacles -> MPPI plan
    GET  /v1/models    the loaded artifacts, versions and checksums (no upload, no switch)
    GET  /healthz      liveness and readiness (unauthenticated)
    GET  /metrics      Prometheus (unauthenticated)
"""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from wm_common.geometry import Pose2D
from wm_fleet import schema as fleet_schema
from wm_fleet.connection import RedisConfig
from wm_planner.models import Goal
from wm_planner.neighbours import NeighbourPlan, to_planning_frame
from wm_world_model.state import RobotState

from . import schemas
from .batcher import BatcherStopped, DynamicBatcher
from .config import ServiceConfig
from .engine import Engine, PredictItem
from .fleet_state import FleetStates, FleetUnavailable, RobotNotFound
from .metrics import ServiceMetrics

API_VERSION = "1.0.0"
log = logging.getLogger("wm_service")
MAP_IS_PLAN_FRAME = Pose2D(0.0, 0.0, 0.0)   # states, goals and fleet entries are all in map
ROUTES = ("/v1/predict", "/v1/plan", "/v1/models", "/healthz", "/metrics")


class _Guard:
    """Pure ASGI middleware: refuses bodies over max_body_bytes (413: by Content-Length, or
    while reading a chunked body, never holding more than the limit) and times every
    request."""

    def __init__(self, app, max_body_bytes: int, metrics: ServiceMetrics,
                 log_every_s: float = 5.0):
        self.app = app
        self.limit = max_body_bytes
        self.metrics = metrics
        self.log_every_s = log_every_s
        self._rejected = {}   # (route, code) -> [count, last logged (monotonic)]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        route = scope["path"] if scope["path"] in ROUTES else "other"
        t0 = time.perf_counter()
        status = {"code": 500}

        async def send_wrapped(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        length = dict(scope.get("headers") or []).get(b"content-length")
        try:
            too_big = length is not None and int(length) > self.limit
        except ValueError:
            too_big = True
        if too_big:
            await self._refuse(send_wrapped)
        elif length is not None or scope.get("method") in ("GET", "HEAD"):
            await self.app(scope, receive, send_wrapped)
        else:
            await self._buffered(scope, receive, send_wrapped)
        self.metrics.request(route, scope.get("method", ""), status["code"],
                             time.perf_counter() - t0)
        if status["code"] >= 400:
            self._log_rejected(route, status["code"])

    def _log_rejected(self, route: str, code: int) -> None:
        """One log line per route and code every log_every_s at most, with the count (the
        counter itself is wm_service_requests_total)."""
        seen = self._rejected.setdefault((route, code), [0, -1e9])
        seen[0] += 1
        now = time.monotonic()
        if now - seen[1] >= self.log_every_s:
            seen[1] = now
            log.warning("%s: answered %d (%d so far)", route, code, seen[0])

    async def _buffered(self, scope, receive, send):
        """No Content-Length (chunked): read the body here, at most the limit, then hand it
        on in one piece."""
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return                       # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.limit:
                return await self._refuse(send)
        body = b"".join(chunks)
        replayed = []

        async def replay():
            if replayed:
                return await receive()
            replayed.append(True)
            return {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, replay, send)

    async def _refuse(self, send):
        body = json.dumps({"detail": "request body larger than %d bytes" % self.limit}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def unprocessable(loc, msg: str) -> HTTPException:
    """A 422 in the shape of FastAPI's own validation errors (the spec documents one shape)."""
    return HTTPException(422, [{"loc": list(loc), "msg": msg, "type": "value_error"}])


def create_app(cfg: ServiceConfig, engine: Optional[Engine] = None,
               fleet: Optional[FleetStates] = None) -> FastAPI:
    """The ASGI app. engine: reuse a loaded one (tests); fleet: the Redis reader (None: built
    from cfg.redis when set)."""
    engine = engine if engine is not None else Engine(cfg)
    if fleet is None and cfg.redis:
        fleet = FleetStates(RedisConfig.from_params(dict(cfg.redis)), cfg.fleet)
    token = cfg.read_token()
    metrics = ServiceMetrics(list(engine.models))
    # torch's thread count is per OS thread (OpenMP): set it in the worker that runs the
    # model, or batches of a few rows fan out over every core and stall on OpenMP barriers
    # (measured: 4-row calls 60x slower than in the main thread on the 2-core machine).
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wm-model",
                                  initializer=engine.set_threads)

    def run_batch(items):
        return engine.predict_batch(items)

    batcher = DynamicBatcher(run_batch, executor, window_s=cfg.batch_window_ms * 1e-3,
                             max_batch=cfg.max_batch, on_batch=metrics.batch)

    @asynccontextmanager
    async def lifespan(app):
        batcher.start()
        yield
        await batcher.stop()
        executor.shutdown(wait=False)

    app = FastAPI(title="wm world-model service", version=API_VERSION, lifespan=lifespan,
                  description=__doc__.split("\n\n")[0].replace("\n", " "),
                  responses={400: {"model": schemas.Problem, "description": "the body is "
                                   "not JSON"},
                             401: {"model": schemas.Problem, "description": "no or wrong "
                                   "token"},
                             413: {"model": schemas.Problem, "description": "body too large"}})
    app.state.engine, app.state.batcher, app.state.metrics = engine, batcher, metrics

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Where and why, never the input itself: it may hold NaN (not JSON) or be huge.
        detail = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")),
                   "type": str(e.get("type", ""))} for e in exc.errors()[:20]]
        return JSONResponse({"detail": detail}, status_code=422)
    bearer = HTTPBearer(auto_error=False, description="the API token (auth_token_file); not "
                        "required when the service has none")

    def authorised(cred: Optional[HTTPAuthorizationCredentials] = Depends(bearer)) -> None:
        if not token:
            return
        if cred is None or not hmac.compare_digest(cred.credentials.encode(), token.encode()):
            raise HTTPException(401, "missing or wrong API token",
                                headers={"WWW-Authenticate": "Bearer"})

    def start_state(req) -> Tuple[RobotState, Optional[fleet_schema.RobotEntry]]:
        if req.state is not None:
            s = req.state
            return RobotState(s.x, s.y, s.yaw, s.v, s.w), None
        if fleet is None:
            raise HTTPException(404, "robot %s not found: this service reads no fleet (no "
                                "redis configured); give a state" % req.robot_id)
        try:
            e = fleet.robot(req.robot_id)
        except RobotNotFound:
            raise HTTPException(404, "robot %s has no live entry in fleet %r"
                                % (req.robot_id, cfg.fleet)) from None
        except fleet_schema.EntryError as err:
            raise unprocessable(["body", "robot_id"], "robot %s's fleet entry is refused: %s"
                                % (req.robot_id, err)) from None
        except FleetUnavailable as err:
            raise HTTPException(503, "fleet Redis unavailable: %s" % err) from None
        return RobotState(e.pose[0], e.pose[1], e.pose[2], e.velocity[0], e.velocity[1]), e

    def model_of(name: Optional[str]) -> str:
        try:
            return engine.model_name(name)
        except KeyError as e:
            raise HTTPException(404, str(e.args[0])) from None

    def horizon_ok(n: int) -> None:
        if n > cfg.max_horizon:
            raise unprocessable(["body", "commands"], "%d steps > max_horizon %d"
                                % (n, cfg.max_horizon))

    @app.post("/v1/predict", response_model=schemas.PredictResponse,
              dependencies=[Depends(authorised)],
              responses={404: {"model": schemas.Problem}, 503: {"model": schemas.Problem}})
    async def predict(req: schemas.PredictRequest) -> Dict[str, Any]:
        """Predicted states of a robot under a command sequence (the world model's rollout,
        or kinematics). Requests arriving together run as one batched model call."""
        name = model_of(req.model)
        horizon_ok(len(req.commands))
        state, _ = await asyncio.get_running_loop().run_in_executor(None, start_state, req) \
            if req.robot_id else start_state(req)
        item = PredictItem(name, (state.x, state.y, state.yaw, state.v, state.w),
                           np.asarray(req.commands, dtype=np.float64), req.payload_kg)
        try:
            p = await batcher.submit(item)
        except BatcherStopped as e:
            raise HTTPException(503, str(e)) from None
        return {"model": p.model, "version": p.version, "dt": engine.dt,
                "trusted": p.trusted, "states": p.states.tolist()}

    @app.post("/v1/plan", response_model=schemas.PlanResponse,
              dependencies=[Depends(authorised)],
              responses={404: {"model": schemas.Problem}, 503: {"model": schemas.Problem}})
    async def plan(req: schemas.PlanRequest) -> Dict[str, Any]:
        """The planner's MPPI solve (same code and parameters as the robots') from a state
        to a goal, around circular obstacles and other robots' intended paths."""
        name = model_of(req.model)
        loop = asyncio.get_running_loop()
        state, entry = await loop.run_in_executor(None, start_state, req)
        neighbours: List[NeighbourPlan] = []
        try:
            neighbours = [NeighbourPlan(n.id, n.times, n.xy, n.radius) for n in req.neighbours]
        except ValueError as e:
            raise unprocessable(["body", "neighbours"], str(e)) from None
        if req.fleet_neighbours:
            if entry is None:
                raise unprocessable(["body", "fleet_neighbours"], "fleet_neighbours needs robot_id")
            neighbours += await loop.run_in_executor(None, fleet_neighbours, entry)
        goal = Goal(req.goal.x, req.goal.y, req.goal.yaw, req.goal.xy_tolerance,
                    req.goal.yaw_tolerance)
        obstacles = [(o.x, o.y, o.radius) for o in req.obstacles]
        t0 = time.perf_counter()
        out = await loop.run_in_executor(executor, lambda: engine.plan(
            name, state, goal, neighbours, obstacles, seed=req.seed,
            payload_kg=req.payload_kg))
        metrics.plan(name, out["status"], time.perf_counter() - t0)
        out["controls"] = np.asarray(out["controls"]).tolist()
        out["trajectory"] = np.asarray(out["trajectory"]).tolist()
        return out

    def fleet_neighbours(entry) -> List[NeighbourPlan]:
        try:
            others = fleet.neighbours(entry, cfg.fleet_neighbour_radius)
        except FleetUnavailable as err:
            raise HTTPException(503, "fleet Redis unavailable: %s" % err) from None
        plans = []
        for e in others:   # as the planner node takes them; here the map is the plan's frame
            pts = e.trajectory or ((e.stamp, e.pose[0], e.pose[1]),)
            plans.append(to_planning_frame(e.robot_id, [p[0] for p in pts],
                                           [p[1:] for p in pts], e.radius, MAP_IS_PLAN_FRAME,
                                           entry.stamp))
        return plans

    @app.get("/v1/models", response_model=schemas.ModelsResponse,
             dependencies=[Depends(authorised)])
    async def models() -> Dict[str, Any]:
        """The models this service loaded at start, with their artifact checksums."""
        return {"default": engine.default_model,
                "models": [{k: v for k, v in info.items() if k != "path"}
                           for info in engine.info.values()]}

    @app.get("/healthz", response_model=schemas.Health,
             responses={503: {"model": schemas.Health}})
    async def healthz():
        """200 when the models are loaded and the batcher runs (liveness and readiness). The
        fleet's Redis is reported, not required: what-if queries with a state still work."""
        if fleet is None:
            fleet_status = "not configured"
        else:
            why = await asyncio.get_running_loop().run_in_executor(None, fleet.ping)
            fleet_status = "ok" if why is None else "unavailable"
        body = {"status": "ok" if batcher.running else "batcher stopped",
                "models": list(engine.models), "fleet": fleet_status,
                "batcher": "running" if batcher.running else "stopped"}
        return JSONResponse(body, status_code=200 if batcher.running else 503)

    @app.get("/metrics", response_class=Response,
             responses={200: {"content": {"text/plain": {}}}})
    async def prometheus() -> Response:
        """Prometheus text exposition."""
        return Response(metrics.exposition(), media_type=metrics.content_type)

    return _Guard(app, cfg.max_body_bytes, metrics) if cfg.max_body_bytes else app


def fastapi_app(asgi) -> FastAPI:
    """The FastAPI app inside create_app's middleware (for the OpenAPI spec)."""
    return asgi.app if isinstance(asgi, _Guard) else asgi
