"""The service's settings: one YAML file (deploy/service/service.yaml is the image's default),
checked when loaded so a typo stops the service at start, not at the first request.

Secrets never live in the file: the API token and the Redis password are read from files
(mounted Kubernetes Secrets) or named environment variables.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Mapping

import yaml

# The request schema's own ceiling (the OpenAPI spec must not depend on the config):
# max_horizon may lower it, never raise it.
HORIZON_LIMIT = 100
TOKEN_FILE_ENV = "WM_SERVICE_TOKEN_FILE"


@dataclass
class ServiceConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    # Artifact directories are looked up here; "" = the artifacts shipped with wm_world_model.
    models_dir: str = ""
    # World-model artifacts loaded at start ("kinematic" is always there). Nothing else is
    # ever loaded: the API cannot upload or switch a model file.
    models: List[str] = field(default_factory=lambda: ["worldmodel-1.0.0"])
    default_model: str = "worldmodel-1.0.0"
    # Dynamic batching of /v1/predict: a model call takes what queued while the previous one
    # ran, and waits up to batch_window_ms after its first request for more; at most
    # max_batch rows per call (1 = one request per call). 0 ms (no waiting) measured best
    # with clients that wait for their answers (BENCHMARKS.md); a window pays off only when
    # many independent clients send at random times.
    batch_window_ms: float = 0.0
    max_batch: int = 64
    max_body_bytes: int = 65536
    max_horizon: int = 50
    torch_threads: int = 1
    # Where /v1/predict's batched world-model calls run: "cpu", or "cuda" (the CUDA image;
    # /v1/plan's MPPI stays on the CPU, as on the robots).
    device: str = "cpu"
    # Planner parameter overrides for /v1/plan (names as the planner node's, e.g. horizon,
    # num_samples, obstacle.weight). time_budget_ms defaults high so that the number of
    # iterations, not the machine's load, ends a solve: the same request, the same answer.
    planner_params: Dict[str, Any] = field(default_factory=dict)
    # The robots' parameters file whose planner section /v1/plan starts from: "" = the
    # shipped config/robot.yaml (wm_bringup), "none" = the planner's declared defaults.
    planner_params_file: str = ""
    auth_token_file: str = ""
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_client_ca_file: str = ""   # set: mTLS, clients must present a certificate it signed
    fleet: str = "default"
    redis: Dict[str, Any] = field(default_factory=dict)   # wm_fleet RedisConfig; {} = none
    fleet_neighbour_radius: float = 10.0

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ServiceConfig":
        if not isinstance(d, Mapping):
            raise ValueError("service config must be a mapping, got %s" % type(d).__name__)
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError("unknown service setting(s): %s" % ", ".join(unknown))
        cfg = cls(**{k: v for k, v in d.items() if v is not None})
        cfg.validate()
        return cfg

    def validate(self) -> None:
        def number(name, lo, hi, integer=False):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) \
                    or (integer and not isinstance(v, int)) or not math.isfinite(v) \
                    or not lo <= v <= hi:
                raise ValueError("%s must be %s in [%s, %s], got %r"
                                 % (name, "an integer" if integer else "a number", lo, hi, v))
        number("port", 1, 65535, integer=True)
        number("batch_window_ms", 0.0, 1000.0)
        number("max_batch", 1, 4096, integer=True)
        number("max_body_bytes", 1024, 16 << 20, integer=True)
        number("max_horizon", 1, HORIZON_LIMIT, integer=True)
        number("torch_threads", 0, 256, integer=True)
        number("fleet_neighbour_radius", 0.0, 1000.0)
        if self.device not in ("cpu", "cuda") and not str(self.device).startswith("cuda:"):
            raise ValueError("device must be cpu, cuda or cuda:N, got %r" % (self.device,))
        if not isinstance(self.models, list) or not all(isinstance(m, str) and m
                                                        for m in self.models):
            raise ValueError("models must be a list of artifact names")
        if self.default_model not in ["kinematic"] + self.models:
            raise ValueError("default_model %r is not loaded (models: kinematic, %s)"
                             % (self.default_model, ", ".join(self.models)))
        if not isinstance(self.planner_params, dict) or not isinstance(self.redis, dict):
            raise ValueError("planner_params and redis must be mappings")
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ValueError("tls_cert_file and tls_key_file go together")
        if self.tls_client_ca_file and not self.tls_cert_file:
            raise ValueError("mTLS (tls_client_ca_file) needs tls_cert_file and tls_key_file")

    def planner_params_path(self) -> str:
        """The planner parameters file to read ('' for none)."""
        if self.planner_params_file.strip().lower() == "none":
            return ""
        if self.planner_params_file:
            return self.planner_params_file
        return shipped_robot_yaml()

    @property
    def token_file(self) -> str:
        return os.environ.get(TOKEN_FILE_ENV, "") or self.auth_token_file

    def read_token(self) -> str:
        """The API token ('' = no token required). An empty token file is an error: it would
        silently open the API."""
        path = self.token_file
        if not path:
            return ""
        with open(path, encoding="utf-8") as f:
            token = f.read().strip()
        if len(token) < 16:
            raise ValueError("API token in %s is shorter than 16 characters" % path)
        return token


def shipped_robot_yaml() -> str:
    """config/robot.yaml as installed with wm_bringup, else in this source tree."""
    try:
        from ament_index_python.packages import get_package_share_directory

        path = os.path.join(get_package_share_directory("wm_bringup"), "config", "robot.yaml")
        if os.path.isfile(path):
            return path
    except (ImportError, LookupError, ValueError, OSError):
        pass
    here = os.path.dirname(os.path.realpath(__file__))
    for up in (1, 3):    # /opt/wm/wm_service -> /opt/wm; src/wm_service/wm_service -> repo
        path = os.path.join(here, *[".."] * up, "config", "robot.yaml")
        if os.path.isfile(path):
            return os.path.normpath(path)
    raise ValueError("config/robot.yaml not found: set planner_params_file (or 'none')")


def load_config(path: str = "") -> ServiceConfig:
    """The settings of a YAML file ('' = the defaults)."""
    if not path:
        return ServiceConfig.from_dict({})
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    return ServiceConfig.from_dict(doc or {})
