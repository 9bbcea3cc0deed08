"""Start and stop a private redis-server on loopback (the demo's embedded default, and tests).

The password is generated per run and written only into a mode-0600 config file in a private
temporary directory: it never appears on a command line, in the repo or in logs.
"""
from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time

from wm_common.net import free_port  # noqa: F401  (re-exported: tests import it here)


class RedisServer:
    """`with RedisServer() as r: r.url` -- a redis-server bound to 127.0.0.1 on a free port."""

    def __init__(self, executable: str = "redis-server", port: int = 0, password: str = ""):
        self.executable = shutil.which(executable) or executable
        self.port = port or free_port()
        self.password = password or secrets.token_urlsafe(24)
        self.proc = None
        self.dir = None

    @property
    def url(self) -> str:
        """redis:// URL with the password (hand it over through the environment, not argv)."""
        return "redis://:%s@127.0.0.1:%d/0" % (self.password, self.port)

    @property
    def public_url(self) -> str:
        """The URL without the secret, for logs."""
        return "redis://127.0.0.1:%d/0" % self.port

    def start(self, timeout: float = 10.0) -> "RedisServer":
        self.dir = tempfile.mkdtemp(prefix="wm-redis-")
        conf = os.path.join(self.dir, "redis.conf")
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("bind 127.0.0.1\nport %d\nprotected-mode yes\nrequirepass %s\n"
                    "save \"\"\nappendonly no\ndir %s\nloglevel warning\n"
                    % (self.port, self.password, self.dir))
        self.proc = subprocess.Popen([self.executable, conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("redis-server exited with code %s" % self.proc.returncode)
            if self._ping():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not answer within %.0f s" % timeout)

    def _ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"AUTH %s\r\nPING\r\n" % self.password.encode())
                data = b""
                while data.count(b"\r\n") < 2:
                    chunk = s.recv(64)
                    if not chunk:
                        return False
                    data += chunk
                return b"+PONG" in data
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> "RedisServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
