"""Run the service as its own process (`python -m wm_service`) on a free loopback port, for
the tests, the load benchmark and the demo: config file written 0600, healthy-or-raise start,
SIGTERM stop."""
from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional

from wm_common.net import free_port


class ServiceProcess:
    """`with ServiceProcess(cfg, directory) as svc: svc.url` -- the service in its own
    process group, logging to directory/service-<port>.log."""

    def __init__(self, cfg: dict, directory, scheme: str = "http"):
        import yaml

        directory = Path(directory)
        self.port = free_port()
        self.config = directory / ("service-%d.yaml" % self.port)
        fd = os.open(str(self.config), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump(dict(cfg, host="127.0.0.1", port=self.port), f)
        self.log = directory / ("service-%d.log" % self.port)
        self.url = "%s://127.0.0.1:%d" % (scheme, self.port)
        self.proc: Optional[subprocess.Popen] = None

    def start(self, ready: Optional[Callable[[], object]] = None,
              timeout: float = 60.0) -> "ServiceProcess":
        """Start and wait until GET /healthz answers 200 (`ready`: a custom probe returning
        a response with status_code, for TLS). RuntimeError with the log's tail otherwise."""
        import httpx

        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "wm_service", "--config",
                                          str(self.config)], stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        probe = ready or (lambda: httpx.get(self.url + "/healthz", timeout=1.0))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("service exited %s: %s" % (self.proc.returncode,
                                                              self.log_tail()))
            try:
                if probe().status_code == 200:
                    return self
            except (httpx.HTTPError, ssl.SSLError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("service did not become healthy: %s" % self.log_tail())

    def log_tail(self, n: int = 2000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""

    def stop(self) -> int:
        """SIGTERM (then SIGKILL after 15 s); the exit code (-15: uvicorn re-raises the
        signal after a clean shutdown)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode if self.proc is not None else -1

    def __enter__(self) -> "ServiceProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
