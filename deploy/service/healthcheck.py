#!/usr/bin/env python3
"""Docker HEALTHCHECK of the world-model service: GET /healthz, exit 0 on 200, else 1.

    python /opt/wm/healthcheck.py [--url http://127.0.0.1:8080/healthz] [--timeout 3]

The URL defaults to $WM_SERVICE_HEALTH_URL, else http://127.0.0.1:8080/healthz (the port of
deploy/service/service.yaml). /healthz answers 200 once the models are loaded and the batcher
runs, 503 before that or when it stopped. Standard library only (the slim image has no curl).
For a service started with TLS, pass its https:// URL: the certificate is not verified (the
check talks to its own container over loopback); with mTLS the check cannot connect.
Kubernetes does not use this: its probes are httpGet on the same path (deploy/k8s).
"""
from __future__ import annotations

import argparse
import os
import ssl
import sys
import urllib.error
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8080/healthz"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", default=os.environ.get("WM_SERVICE_HEALTH_URL") or DEFAULT_URL)
    ap.add_argument("--timeout", type=float, default=3.0, help="seconds (default 3)")
    args = ap.parse_args(argv)
    context = None
    if args.url.startswith("https://"):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(args.url, timeout=args.timeout, context=context) as r:
            status = r.status
    except urllib.error.HTTPError as e:   # 503 (not ready) and any other error status
        status = e.code
    except (OSError, ValueError) as e:     # refused, timed out, bad URL
        print("unhealthy: %s: %s" % (args.url, e), file=sys.stderr)
        return 1
    if status != 200:
        print("unhealthy: %s answered %d" % (args.url, status), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
