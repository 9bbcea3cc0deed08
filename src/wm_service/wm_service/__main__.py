"""`python -m wm_service --config service.yaml`: run the world-model service under uvicorn.

TLS when tls_cert_file/tls_key_file are set; mTLS (client certificates required, signed by
tls_client_ca_file) when that is set too. One process, one model worker thread: scale with
replicas.
"""
from __future__ import annotations

import argparse
import logging
import ssl
import sys

import uvicorn

from .app import create_app
from .config import load_config


def uvicorn_options(cfg) -> dict:
    opts = {"host": cfg.host, "port": cfg.port, "log_level": "info", "access_log": False,
            "timeout_graceful_shutdown": 10}
    if cfg.tls_cert_file:
        opts.update(ssl_certfile=cfg.tls_cert_file, ssl_keyfile=cfg.tls_key_file)
    if cfg.tls_client_ca_file:
        opts.update(ssl_ca_certs=cfg.tls_client_ca_file, ssl_cert_reqs=ssl.CERT_REQUIRED)
    return opts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m wm_service", description=__doc__)
    ap.add_argument("--config", default="", help="service YAML (default: built-in defaults)")
    ap.add_argument("--host", default=None)
    ap.add_argument("--port", type=int, default=None)
    ap.add_argument("--device", default=None, help="cpu or cuda: where /v1/predict's batched "
                    "world-model calls run (overrides the config; the CUDA image passes cuda)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    try:
        cfg = load_config(args.config)
        if args.host is not None:
            cfg.host = args.host
        if args.port is not None:
            cfg.port = args.port
        if args.device is not None:
            cfg.device = args.device
        cfg.validate()
        app = create_app(cfg)
    except (OSError, ValueError, RuntimeError) as e:
        # artifact checksum failures (ArtifactError), bad settings, unreadable secrets
        print("wm_service: cannot start: %s" % e, file=sys.stderr)
        return 2
    uvicorn.run(app, **uvicorn_options(cfg))
    return 0


if __name__ == "__main__":
    sys.exit(main())
