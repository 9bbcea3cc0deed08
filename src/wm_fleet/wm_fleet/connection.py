"""How a robot connects to the fleet's Redis: plain TCP, TLS (rediss://, mutual TLS), a unix
socket, Sentinel or Cluster, configured like production.

Secrets: the password comes from a file (``password_file``) or an environment variable
(``password_env``); a password in the URL still works but is the last resort. No secret is
ever put into an exception message or a log line: use :func:`redacted` to show a URL.

Timeouts: a robot's control loop must never block long, so every socket has a short timeout
and redis-py's own retries are switched off (redis-py 6 retries 3 times with up to 10 s of
exponential backoff by default). The caller (:class:`wm_fleet.client.FleetClient`) has its
own backoff and simply tries again next cycle.

:func:`connect` does no network I/O (unless ``ping=True``): redis-py connects lazily on the
first command. Exception: ``cluster=True``, because redis-py's ``RedisCluster`` reads the slot
table from the startup node in its constructor.

Plain Python + redis-py (<= 6.1, Python 3.8 on the robots); no rclpy.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Optional, Tuple, Union
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import redis

try:  # redis-py >= 4: explicit retry policy (redis-py 6 retries with backoff by default)
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError:  # pragma: no cover - old redis-py: no retries by default anyway
    NoBackoff = Retry = None

SCHEMES = ("redis", "rediss", "unix")
TLS_FIELDS = ("tls_ca_file", "tls_cert_file", "tls_key_file")

# An idle pooled connection is PINGed before reuse after this long [s]; at the control rate
# the robot's connection is never idle that long, so this costs nothing while it drives.
HEALTH_CHECK_INTERVAL = 10


@dataclass
class RedisConfig:
    """Where and how to connect. Validate with :meth:`validate` (``from_params`` does)."""

    url: str = ""
    username: str = ""
    password_file: str = ""
    password_env: str = ""
    tls_ca_file: str = ""
    tls_cert_file: str = ""
    tls_key_file: str = ""
    # "host:port" of each Sentinel ("[::1]:26379" for IPv6); non-empty = Sentinel mode. The
    # URL's scheme (redis:// or rediss://), db and credentials still apply; its host is unused.
    sentinels: List[str] = field(default_factory=list)
    sentinel_master: str = ""
    # Send username/password (and TLS settings) to the Sentinels too (Sentinels with
    # requirepass, the recommended setup). False: Sentinels without auth, TLS still applies.
    sentinel_auth: bool = True
    cluster: bool = False
    socket_timeout: float = 0.2
    connect_timeout: float = 0.5

    @classmethod
    def from_params(cls, d: Dict[str, Any]) -> "RedisConfig":
        """A validated config from a dict (ROS parameters): unknown keys are refused, None and
        '' entries of ``sentinels`` are dropped (ROS string arrays cannot be empty)."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError("unknown Redis setting(s): %s" % ", ".join(unknown))
        kw: Dict[str, Any] = {}
        for k, v in d.items():
            if k == "sentinels":
                if v is None:
                    v = []
                elif isinstance(v, str):
                    v = [v]
                kw[k] = [str(s).strip() for s in v if s is not None and str(s).strip()]
            elif k in ("cluster", "sentinel_auth"):
                if not isinstance(v, bool):
                    raise ValueError("%s must be true or false, not %r" % (k, v))
                kw[k] = v
            elif k in ("socket_timeout", "connect_timeout"):
                try:
                    kw[k] = float(v)
                except (TypeError, ValueError):
                    raise ValueError("%s must be a number of seconds" % k) from None
            else:
                kw[k] = "" if v is None else str(v).strip()
        cfg = cls(**kw)
        cfg.validate()
        return cfg

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise ValueError (never showing a secret) if the settings cannot work."""
        where = redacted(self.url)
        if not self.url:
            raise ValueError("Redis url is empty")
        scheme = self.scheme
        if scheme not in SCHEMES:
            raise ValueError("Redis url %s: unknown scheme %r (use redis://, rediss:// or "
                             "unix:///path/to.sock)" % (where, scheme))
        try:
            parts = urlsplit(self.url)
            port = parts.port
        except ValueError:
            raise ValueError("Redis url %s: bad port" % where) from None
        self._db(where)  # raises on a bad db
        if scheme == "unix":
            if not parts.path or not parts.path.startswith("/"):
                raise ValueError("Redis url %s: unix:// needs an absolute socket path, "
                                 "e.g. unix:///run/redis/redis.sock" % where)
            if self.sentinels:
                raise ValueError("Redis url %s: Sentinel mode needs redis:// or rediss://, "
                                 "not a unix socket" % where)
            if self.cluster:
                raise ValueError("Redis url %s: Redis Cluster cannot use a unix socket"
                                 % where)
        elif not self.sentinels and not parts.hostname:
            raise ValueError("Redis url %s: no host" % where)
        if port is not None and not 0 < port < 65536:
            raise ValueError("Redis url %s: bad port" % where)

        if scheme != "rediss":
            given = [n for n in TLS_FIELDS if getattr(self, n)]
            if given:
                raise ValueError("%s set but Redis url %s is not rediss:// (TLS)"
                                 % (", ".join(given), where))
        if self.tls_key_file and not self.tls_cert_file:
            raise ValueError("tls_key_file set without tls_cert_file")
        for n in TLS_FIELDS:
            _readable_file(n, getattr(self, n))
        _readable_file("password_file", self.password_file)
        if self.password_env and not _env_name_ok(self.password_env):
            raise ValueError("password_env %r is not an environment variable name"
                             % self.password_env)

        if self.sentinels:
            self.sentinel_addresses()  # raises on a bad address
            if not self.sentinel_master:
                raise ValueError("sentinels set but no sentinel_master (the service name in "
                                 "the Sentinels' 'sentinel monitor <name> ...' line)")
            if self.cluster:
                raise ValueError("cluster and sentinels are exclusive: Redis Cluster does "
                                 "its own failover")
        elif self.sentinel_master:
            raise ValueError("sentinel_master %r set but no sentinels" % self.sentinel_master)
        if self.cluster and self._db(where) != 0:
            raise ValueError("Redis url %s: Redis Cluster has only db 0" % where)
        for n in ("socket_timeout", "connect_timeout"):
            v = getattr(self, n)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and 0.0 < v <= 60.0):
                raise ValueError("%s must be in (0, 60] s, not %r" % (n, v))

    @property
    def scheme(self) -> str:
        return self.url.partition("://")[0].lower() if "://" in self.url else ""

    @property
    def tls(self) -> bool:
        return self.scheme == "rediss"

    def sentinel_addresses(self) -> List[Tuple[str, int]]:
        out = []
        for s in self.sentinels:
            host, sep, port = s.strip().rpartition(":")
            host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError("sentinel %r: expected host:port" % s)
            out.append((host, int(port)))
        return out

    def _db(self, where: str) -> int:
        parts = urlsplit(self.url)
        q = dict(parse_qsl(parts.query))
        raw = q.get("db")
        if raw is None and self.scheme != "unix":
            raw = parts.path.strip("/") or None
        if raw is None:
            return 0
        if not raw.isdigit():
            raise ValueError("Redis url %s: db must be a number, not %r" % (where, raw))
        return int(raw)


def _readable_file(name: str, path: str) -> None:
    if not path:
        return
    if not os.path.isfile(path):
        raise ValueError("%s %s: no such file" % (name, path))
    if not os.access(path, os.R_OK):
        raise ValueError("%s %s: not readable by this user" % (name, path))


def _env_name_ok(name: str) -> bool:
    return name.replace("_", "a").isalnum() and not name[0].isdigit()


def _url_credentials(url: str) -> Tuple[Optional[str], Optional[str]]:
    """(username, password) from the URL's userinfo or its ?password= query."""
    parts = urlsplit(url)
    userinfo, at, _ = parts.netloc.rpartition("@")
    user = password = None
    if at:
        u, colon, p = userinfo.partition(":")
        user = unquote(u) or None
        password = unquote(p) if colon and p else None
    q = dict(parse_qsl(parts.query))
    return user, password or q.get("password") or None


def resolve_password(cfg: RedisConfig) -> Optional[str]:
    """The password: from ``password_file`` (trailing newline stripped), else the variable
    named by ``password_env`` (if set and non-empty), else the URL; None = no AUTH."""
    if cfg.password_file:
        try:
            with open(cfg.password_file, "r", encoding="utf-8") as f:
                pw = f.read().rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as e:
            # the error's text names the file, never its content
            raise ValueError("password_file %s: cannot read (%s)"
                             % (cfg.password_file, type(e).__name__)) from None
        if not pw:
            raise ValueError("password_file %s is empty" % cfg.password_file)
        return pw
    if cfg.password_env:
        pw = os.environ.get(cfg.password_env, "")
        if pw:
            return pw
    return _url_credentials(cfg.url)[1]


def redacted(url: str) -> str:
    """The URL without its password (userinfo and ?password=), for logs."""
    try:
        parts = urlsplit(url)
        userinfo, at, hostport = parts.netloc.rpartition("@")
        netloc = hostport
        if at:
            user = userinfo.partition(":")[0]
            netloc = "%s@%s" % (user, hostport) if user else hostport
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                           if k.lower() != "password"])
        # by hand: urlunsplit turns unix:///path into unix:/path
        return "%s://%s%s%s%s" % (parts.scheme, netloc, parts.path, "?" + query if query else "",
                                  "#" + parts.fragment if parts.fragment else "")
    except ValueError:
        return "<unparsable Redis url>"


def _no_retry() -> Dict[str, Any]:
    return {} if Retry is None else {"retry": Retry(NoBackoff(), 0)}


def _tls_kwargs(cfg: RedisConfig) -> Dict[str, Any]:
    if not cfg.tls:
        return {}
    return {"ssl": True, "ssl_cert_reqs": "required", "ssl_check_hostname": True,
            "ssl_ca_certs": cfg.tls_ca_file or None,
            "ssl_certfile": cfg.tls_cert_file or None,
            "ssl_keyfile": cfg.tls_key_file or None}


def connect(cfg: RedisConfig, ping: bool = False
            ) -> Union["redis.Redis", "redis.cluster.RedisCluster"]:
    """A redis-py client for ``cfg`` (bytes replies). No network I/O (redis-py connects on
    the first command) unless ``ping`` (then PING, raising redis errors) or ``cfg.cluster``.
    Raises ValueError for settings that cannot work."""
    cfg.validate()
    where = redacted(cfg.url)
    parts = urlsplit(cfg.url)
    url_user, _ = _url_credentials(cfg.url)
    auth = {"username": cfg.username or url_user or None, "password": resolve_password(cfg)}
    timeouts = {"socket_timeout": cfg.socket_timeout,
                "socket_connect_timeout": cfg.connect_timeout}
    common: Dict[str, Any] = dict(auth, decode_responses=False, **timeouts)
    tls = _tls_kwargs(cfg)
    db = cfg._db(where)

    if cfg.cluster:
        from redis.cluster import RedisCluster
        kw = dict(common, **tls)
        if Retry is not None:  # cluster-level retry; RedisCluster refuses it in **kwargs
            kw["retry"] = Retry(NoBackoff(), 0)
        client = RedisCluster(host=parts.hostname, port=parts.port or 6379, **kw)
    elif cfg.sentinels:
        from redis.sentinel import Sentinel
        sentinel_kw: Dict[str, Any] = dict(timeouts, **tls)
        sentinel_kw.update(_no_retry())
        if cfg.sentinel_auth:
            sentinel_kw.update((k, v) for k, v in auth.items() if v is not None)
        # sentinel_kwargs must be explicit: by default redis-py gives the Sentinel
        # connections only the socket_* settings (no password, no TLS, default retries)
        sentinel = Sentinel(cfg.sentinel_addresses(), sentinel_kwargs=sentinel_kw)
        kw = dict(common, db=db, health_check_interval=HEALTH_CHECK_INTERVAL, **tls)
        kw.update(_no_retry())
        client = sentinel.master_for(cfg.sentinel_master, **kw)
    elif cfg.scheme == "unix":
        kw = dict(common, db=db, health_check_interval=HEALTH_CHECK_INTERVAL)
        kw.update(_no_retry())
        client = redis.Redis(unix_socket_path=unquote(parts.path), **kw)
    else:
        kw = dict(common, db=db, health_check_interval=HEALTH_CHECK_INTERVAL, **tls)
        kw.update(_no_retry())
        client = redis.Redis(host=parts.hostname, port=parts.port or 6379, **kw)
    if ping:
        client.ping()
    return client
