"""Prometheus metrics of the service (one registry per app, so tests can run several)."""
from __future__ import annotations

from typing import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class ServiceMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, models: Sequence[str]):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("wm_service_requests_total", "HTTP requests by route and code",
                                ["route", "method", "code"], registry=r)
        self.latency = Histogram("wm_service_request_seconds", "HTTP request latency",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("wm_service_batch_size",
                                    "/v1/predict requests per model call",
                                    buckets=BATCH_BUCKETS, registry=r)
        self.batch_wait = Histogram("wm_service_batch_wait_seconds",
                                    "time the oldest request of a batch waited for its call",
                                    buckets=LATENCY_BUCKETS, registry=r)
        self.model_call = Histogram("wm_service_model_call_seconds",
                                    "one batched prediction call", buckets=LATENCY_BUCKETS,
                                    registry=r)
        self.plans = Counter("wm_service_plans_total", "MPPI plans by model and status",
                             ["model", "status"], registry=r)
        self.plan_time = Histogram("wm_service_plan_seconds", "one /v1/plan solve",
                                   ["model"], buckets=LATENCY_BUCKETS, registry=r)
        loaded = Gauge("wm_service_model_loaded", "1 for every loaded model", ["model"],
                       registry=r)
        for m in models:
            loaded.labels(model=m).set(1)

    def request(self, route: str, method: str, code: int, seconds: float) -> None:
        self.requests.labels(route=route, method=method, code=str(code)).inc()
        self.latency.labels(route=route).observe(seconds)

    def batch(self, size: int, waited: float, call: float) -> None:
        self.batch_size.observe(size)
        self.batch_wait.observe(waited)
        self.model_call.observe(call)

    def plan(self, model: str, status: str, seconds: float) -> None:
        self.plans.labels(model=model, status=status).inc()
        self.plan_time.labels(model=model).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
