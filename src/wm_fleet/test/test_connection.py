"""wm_fleet.connection against real redis-servers on free loopback ports / private unix
sockets: password from a file and from the environment, ACL users, mutual TLS with
certificates made on the fly, a unix socket, Sentinel, a one-node Cluster, the short
timeouts, and the settings refused before any connection is tried. No mocks."""
from __future__ import annotations

import os
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from redis.connection import SSLConnection, UnixDomainSocketConnection

REPO = Path(__file__).resolve().parents[3]
for _pkg, _mod in (("wm_fleet", "wm_fleet.connection"), ("wm_bringup", "wm_eval.redis_server")):
    try:  # installed by colcon; from the source tree otherwise
        __import__(_mod)
    except ImportError:
        sys.path.insert(0, str(REPO / "src" / _pkg))
from pki import make_pki, write_private  # noqa: E402  (tests/pki.py)
from wm_eval.redis_server import RedisServer, free_port  # noqa: E402
from wm_fleet.connection import RedisConfig, connect, redacted, resolve_password  # noqa: E402

REDIS_SERVER = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not installed")


class Server:
    """A redis-server (or Sentinel) from a config text written to a 0600 file: secrets never
    on the command line. Ready when ``ready()`` stops raising."""

    def __init__(self, directory, conf: str, ready, sentinel: bool = False):
        self.conf = write_private(os.path.join(str(directory), "redis.conf"),
                                  conf + "dir %s\nloglevel warning\n" % directory)
        self.ready, self.sentinel, self.proc = ready, sentinel, None

    def __enter__(self):
        argv = [REDIS_SERVER, self.conf] + (["--sentinel"] if self.sentinel else [])
        log = self.conf[:-len(".conf")] + ".log"
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        try:
            deadline = time.monotonic() + 10.0
            while True:
                if self.proc.poll() is not None:
                    with open(log, "rb") as f:
                        tail = f.read()[-600:].decode(errors="replace")
                    raise RuntimeError("redis-server exited with %s: %s"
                                       % (self.proc.returncode, tail))
                try:
                    self.ready()
                    return self
                except (redis.RedisError, OSError):
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        except BaseException:
            self.stop()
            raise

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __exit__(self, *exc):
        self.stop()


def round_trip(client, key=b"wm:fleet:test:k"):
    value = secrets.token_bytes(8)
    assert client.set(key, value, px=5000)
    assert client.get(key) == value
    return value


# ------------------------------------------------------------------ passwords and ACL users
@pytest.fixture(scope="module")
def server():
    with RedisServer() as s:
        yield s


@pytest.fixture(scope="module")
def admin(server):
    c = redis.Redis.from_url(server.url)
    yield c
    c.close()


def tcp_url(server):
    return "redis://127.0.0.1:%d/0" % server.port


def test_password_from_file(server, tmp_path):
    pw_file = write_private(tmp_path / "pw", server.password + "\n")  # trailing newline
    cfg = RedisConfig.from_params({"url": tcp_url(server), "password_file": pw_file})
    assert resolve_password(cfg) == server.password
    c = connect(cfg, ping=True)
    assert isinstance(c, redis.Redis)
    round_trip(c)
    c.close()


def test_password_from_env(server, monkeypatch):
    monkeypatch.setenv("WM_TEST_REDIS_PW", server.password)
    cfg = RedisConfig.from_params({"url": tcp_url(server), "password_env": "WM_TEST_REDIS_PW"})
    c = connect(cfg)
    round_trip(c)
    c.close()


def test_password_file_wins_over_url_and_env(server, tmp_path, monkeypatch):
    monkeypatch.setenv("WM_TEST_REDIS_PW", "wrong-env")
    pw_file = write_private(tmp_path / "pw", server.password)
    url = "redis://:wrong-url@127.0.0.1:%d/0" % server.port
    cfg = RedisConfig.from_params({"url": url, "password_file": pw_file,
                                   "password_env": "WM_TEST_REDIS_PW"})
    assert connect(cfg, ping=True).ping()
    # no file: the environment variable wins over the URL; unset variable: the URL is used
    cfg = RedisConfig.from_params({"url": url, "password_env": "WM_TEST_REDIS_PW"})
    assert resolve_password(cfg) == "wrong-env"
    monkeypatch.delenv("WM_TEST_REDIS_PW")
    assert resolve_password(cfg) == "wrong-url"


def test_wrong_or_missing_password_is_refused(server, tmp_path):
    pw_file = write_private(tmp_path / "pw", "not-the-password\n")
    cfg = RedisConfig.from_params({"url": tcp_url(server), "password_file": pw_file})
    with pytest.raises(redis.AuthenticationError):
        connect(cfg, ping=True)
    with pytest.raises(redis.AuthenticationError):  # NOAUTH is an AuthenticationError too
        connect(RedisConfig.from_params({"url": tcp_url(server)})).set("wm:fleet:x", b"1")


def test_acl_user_is_confined_to_its_keys(server, admin, tmp_path):
    user, pw = "robot", secrets.token_urlsafe(16)
    admin.execute_command("ACL", "SETUSER", user, "reset", "on", ">" + pw, "~wm:fleet:*",
                          "+@all")
    try:
        pw_file = write_private(tmp_path / "pw", pw + "\n")
        cfg = RedisConfig.from_params({"url": tcp_url(server), "username": user,
                                       "password_file": pw_file})
        c = connect(cfg)
        assert c.acl_whoami() == "robot"  # redis-py decodes this reply
        round_trip(c, b"wm:fleet:{w}:v1:robot:r1")
        with pytest.raises(redis.exceptions.NoPermissionError):
            c.set("other:key", b"1")
        with pytest.raises(redis.exceptions.NoPermissionError):
            c.get("other:key")
        c.close()
        # the default user's password does not open the robot user
        bad = write_private(tmp_path / "bad", server.password)
        cfg = RedisConfig.from_params({"url": tcp_url(server), "username": user,
                                       "password_file": bad})
        with pytest.raises(redis.AuthenticationError):
            connect(cfg, ping=True)
    finally:
        admin.execute_command("ACL", "DELUSER", user)


def test_username_and_password_from_url(server, admin):
    pw = "p@ss:w/rd%"  # must be percent-encoded in the URL
    admin.execute_command("ACL", "SETUSER", "urluser", "reset", "on", ">" + pw, "~wm:fleet:*",
                          "+@all")
    try:
        url = "redis://urluser:p%40ss%3Aw%2Frd%25@127.0.0.1:" + str(server.port) + "/0"
        assert redacted(url) == "redis://urluser@127.0.0.1:%d/0" % server.port
        c = connect(RedisConfig.from_params({"url": url}))
        assert c.acl_whoami() == "urluser"
        c.close()
    finally:
        admin.execute_command("ACL", "DELUSER", "urluser")


# ------------------------------------------------------------------ no blocking, no I/O
def test_connect_does_no_io_and_fails_fast():
    port = free_port()  # nothing listens there
    # connect() itself does not touch the network: no error yet
    c = connect(RedisConfig.from_params({"url": "redis://127.0.0.1:%d/0" % port}))
    t0 = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        c.get("wm:fleet:x")
    assert time.monotonic() - t0 < 1.0


def test_a_silent_server_times_out_after_socket_timeout():
    with socket.socket() as silent:  # accepts TCP connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = "redis://127.0.0.1:%d/0" % silent.getsockname()[1]
        c = connect(RedisConfig.from_params({"url": url, "socket_timeout": 0.2}))
        t0 = time.monotonic()
        with pytest.raises(redis.TimeoutError):
            c.get("wm:fleet:x")
        # one try only: redis-py 6's default retry (3 more tries, exponential backoff with
        # jitter up to 10 s) would block the control loop for seconds here
        assert 0.15 < time.monotonic() - t0 < 1.0
        c.close()


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("tls"))
    os.chmod(d, 0o700)
    pki = make_pki(d)
    port, password = free_port(), secrets.token_urlsafe(24)
    pw_file = write_private(os.path.join(d, "pw"), password + "\n")
    conf = ("bind 127.0.0.1\nport 0\ntls-port %d\ntls-cert-file %s\ntls-key-file %s\n"
            "tls-ca-cert-file %s\ntls-auth-clients yes\nrequirepass %s\nsave \"\"\n"
            "appendonly no\n" % (port, pki["server_cert"], pki["server_key"], pki["ca"],
                                 password))
    params = {"url": "rediss://127.0.0.1:%d/0" % port, "password_file": pw_file,
              "tls_ca_file": pki["ca"], "tls_cert_file": pki["client_cert"],
              "tls_key_file": pki["client_key"]}

    def ready():
        connect(RedisConfig.from_params(params), ping=True).close()

    with Server(d, conf, ready):
        yield params, pki


def test_tls_keys_are_private(tls_server):
    _, pki = tls_server
    for k in ("server_key", "client_key"):
        assert stat.S_IMODE(os.stat(pki[k]).st_mode) == 0o600


def test_mutual_tls_round_trip(tls_server):
    params, _ = tls_server
    c = connect(RedisConfig.from_params(params), ping=True)
    assert c.connection_pool.connection_class is SSLConnection
    round_trip(c)
    c.close()
    # the certificate names localhost too: hostname verification passes with it
    c = connect(RedisConfig.from_params(dict(params, url=params["url"].replace(
        "127.0.0.1", "localhost"))))
    round_trip(c)
    c.close()


def test_tls_without_client_certificate_is_refused(tls_server):
    params, _ = tls_server
    cfg = RedisConfig.from_params(dict(params, tls_cert_file="", tls_key_file=""))
    with pytest.raises(redis.ConnectionError) as e:
        connect(cfg, ping=True)
    # refused for the certificate (TLS 1.3: alert "certificate required"), not the password
    assert not isinstance(e.value, redis.AuthenticationError)
    # TLS 1.3: the server refuses the missing certificate after the client's handshake is
    # done, so the client may only see it as the connection torn down at its first write
    why = str(e.value).lower()
    assert any(s in why for s in ("certificate", "handshake", "eof occurred in violation of "
                                  "protocol", "connection reset")), why


def test_tls_with_another_ca_fails_verification(tls_server):
    params, pki = tls_server
    cfg = RedisConfig.from_params(dict(params, tls_ca_file=pki["other_ca"]))
    with pytest.raises(redis.ConnectionError) as e:
        connect(cfg, ping=True)
    assert "CERTIFICATE_VERIFY_FAILED" in str(e.value) or "certificate verify" in str(e.value)


def test_plain_tcp_to_the_tls_port_fails(tls_server):
    params, _ = tls_server
    url = params["url"].replace("rediss://", "redis://")
    cfg = RedisConfig.from_params({"url": url, "password_file": params["password_file"]})
    with pytest.raises((redis.ConnectionError, redis.TimeoutError)) as e:
        connect(cfg, ping=True)
    assert not isinstance(e.value, redis.AuthenticationError)


# ------------------------------------------------------------------ unix socket
def test_unix_socket(tmp_path):
    d = tmp_path / "sock"
    d.mkdir(mode=0o700)
    sock, password = str(d / "redis.sock"), secrets.token_urlsafe(24)
    pw_file = write_private(tmp_path / "pw", password + "\n")
    conf = ("port 0\nunixsocket %s\nunixsocketperm 700\nrequirepass %s\nsave \"\"\n"
            "appendonly no\n" % (sock, password))
    cfg = RedisConfig.from_params({"url": "unix://" + sock, "password_file": pw_file})
    with Server(d, conf, lambda: connect(cfg, ping=True).close()):
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o700
        c = connect(cfg)
        assert c.connection_pool.connection_class is UnixDomainSocketConnection
        round_trip(c)
        assert c.connection_pool.connection_kwargs["path"] == sock
        c.close()
        db1 = connect(RedisConfig.from_params({"url": "unix://%s?db=1" % sock,
                                               "password_file": pw_file}))
        assert db1.get(b"wm:fleet:test:k") is None  # another db: the key is not there
        db1.close()


# ------------------------------------------------------------------ Sentinel
def test_sentinel_master_for(tmp_path):
    d = tmp_path / "sentinel"
    d.mkdir(mode=0o700)
    with RedisServer() as master:
        sport = free_port()
        pw_file = write_private(tmp_path / "pw", master.password + "\n")
        # the Sentinel knows the master's password (auth-pass) and requires the same one
        conf = ("bind 127.0.0.1\nport %d\nsentinel monitor wmmaster 127.0.0.1 %d 1\n"
                "sentinel auth-pass wmmaster %s\nrequirepass %s\n"
                % (sport, master.port, master.password, master.password))
        params = {"url": "redis://sentinel/0", "password_file": pw_file,
                  "sentinels": ["127.0.0.1:%d" % sport, ""], "sentinel_master": "wmmaster"}

        def ready():  # the Sentinel answers and reports the master as usable
            connect(RedisConfig.from_params(params)).connection_pool.get_master_address()

        with Server(d, conf, ready, sentinel=True):
            c = connect(RedisConfig.from_params(params))
            value = round_trip(c, b"wm:fleet:sentinel")
            assert c.connection_pool.get_master_address() == ("127.0.0.1", master.port)
            direct = redis.Redis.from_url(master.url)
            assert direct.get(b"wm:fleet:sentinel") == value  # it went to that master
            direct.close()
            c.close()

            wrong = connect(RedisConfig.from_params(dict(params, sentinel_master="nope")))
            with pytest.raises(redis.sentinel.MasterNotFoundError):
                wrong.ping()
            # the Sentinel needs the password too: without it no master is found
            noauth = connect(RedisConfig.from_params(dict(params, sentinel_auth=False)))
            with pytest.raises(redis.sentinel.MasterNotFoundError) as e:
                noauth.ping()
            assert "NOAUTH" in str(e.value) or "Authentication" in str(e.value)


# ------------------------------------------------------------------ Cluster (one node)
def test_one_node_cluster(tmp_path):
    d = tmp_path / "cluster"
    d.mkdir(mode=0o700)
    port, bus, password = free_port(), free_port(), secrets.token_urlsafe(24)
    pw_file = write_private(tmp_path / "pw", password + "\n")
    # cluster-port: the default bus port (port + 10000) may lie beyond 65535
    conf = ("bind 127.0.0.1\nport %d\ncluster-port %d\ncluster-enabled yes\n"
            "cluster-config-file nodes.conf\nrequirepass %s\nmasterauth %s\nsave \"\"\n"
            "appendonly no\n" % (port, bus, password, password))
    admin = redis.Redis(port=port, password=password, socket_timeout=2)

    def ready():
        admin.ping()

    with Server(d, conf, ready):
        admin.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        deadline = time.monotonic() + 10
        while b"cluster_state:ok" not in admin.execute_command("CLUSTER", "INFO"):
            assert time.monotonic() < deadline, "cluster did not become ok"
            time.sleep(0.05)
        cfg = RedisConfig.from_params({"url": "redis://127.0.0.1:%d" % port,
                                       "password_file": pw_file, "cluster": True})
        c = connect(cfg)
        assert isinstance(c, redis.cluster.RedisCluster)
        round_trip(c, b"wm:fleet:{w}:v1:robot:r1")
        c.close()
        admin.close()


# ------------------------------------------------------------------ refused settings
@pytest.mark.parametrize("params,message", [
    ({"url": ""}, "empty"),
    ({"url": "http://127.0.0.1:6379"}, "unknown scheme 'http'"),
    ({"url": "127.0.0.1:6379"}, "unknown scheme"),
    ({"url": "redis://127.0.0.1:99999/0"}, "bad port"),
    ({"url": "redis://127.0.0.1:6379/x"}, "db must be a number"),
    ({"url": "redis:///0"}, "no host"),
    ({"url": "unix://relative.sock"}, "absolute socket path"),
    ({"url": "rediss://h:6380", "tls_ca_file": "/nonexistent/ca.crt"}, "tls_ca_file"),
    ({"url": "rediss://h:6380", "tls_cert_file": "/nonexistent/c.crt"}, "no such file"),
    ({"url": "rediss://h:6380", "tls_key_file": "KEY"}, "without tls_cert_file"),
    ({"url": "redis://h:6379", "tls_ca_file": "CA"}, "not rediss://"),
    ({"url": "redis://h:6379", "password_file": "/nonexistent/pw"}, "password_file"),
    ({"url": "redis://h", "sentinels": ["127.0.0.1:26379"]}, "no sentinel_master"),
    ({"url": "redis://h", "sentinels": ["127.0.0.1"], "sentinel_master": "m"},
     "expected host:port"),
    ({"url": "redis://h", "sentinel_master": "m"}, "no sentinels"),
    ({"url": "unix:///run/redis.sock", "cluster": True}, "unix socket"),
    ({"url": "unix:///run/redis.sock", "sentinels": ["h:1"], "sentinel_master": "m"},
     "unix socket"),
    ({"url": "redis://h", "cluster": True, "sentinels": ["h:1"], "sentinel_master": "m"},
     "exclusive"),
    ({"url": "redis://h/3", "cluster": True}, "only db 0"),
    ({"url": "redis://h", "cluster": "yes"}, "true or false"),
    ({"url": "redis://h", "socket_timeout": 0}, "socket_timeout"),
    ({"url": "redis://h", "password_env": "NOT A NAME"}, "environment variable"),
    ({"url": "redis://h", "passwd": "x"}, "unknown Redis setting(s): passwd"),
])
def test_bad_settings_are_refused_before_connecting(params, message, tmp_path):
    params = dict(params)
    for k in ("tls_ca_file", "tls_key_file"):  # existing files where the test means it
        if params.get(k) in ("CA", "KEY"):
            params[k] = write_private(tmp_path / k, "x")
    with pytest.raises(ValueError) as e:
        RedisConfig.from_params(params)
    assert message in str(e.value)


def test_unreadable_tls_file_is_refused(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    ca = write_private(tmp_path / "ca.crt", "x")
    os.chmod(ca, 0)
    with pytest.raises(ValueError, match="not readable"):
        RedisConfig.from_params({"url": "rediss://h:6380", "tls_ca_file": ca})


def test_errors_and_redacted_urls_never_show_the_password():
    secret = "s3cr3t-Pw"
    for url in ("redis://:%s@h:6379/x" % secret, "redis://robot:%s@h:99999" % secret,
                "ftp://u:%s@h" % secret):
        with pytest.raises(ValueError) as e:
            RedisConfig.from_params({"url": url})
        assert secret not in str(e.value)
    assert redacted("rediss://robot:%s@h:6380/0" % secret) == "rediss://robot@h:6380/0"
    assert redacted("redis://:%s@h:6379" % secret) == "redis://h:6379"
    assert redacted("unix:///run/r.sock?db=2&password=%s" % secret) == "unix:///run/r.sock?db=2"
    assert redacted("redis://h:6379/0") == "redis://h:6379/0"


def test_empty_password_file_is_refused(tmp_path):
    cfg = RedisConfig.from_params({"url": "redis://h",
                                   "password_file": write_private(tmp_path / "pw", "\n")})
    with pytest.raises(ValueError, match="empty"):
        resolve_password(cfg)


def test_from_params_like_the_node():
    cfg = RedisConfig.from_params({"url": "redis://h", "sentinels": [""], "cluster": False,
                                   "password_env": "WM_REDIS_PASSWORD"})
    assert cfg.sentinels == [] and cfg.socket_timeout == 0.2 and cfg.connect_timeout == 0.5
