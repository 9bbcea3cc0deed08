"""The service's OpenAPI spec, generated from the code and checked in (src/wm_service/
openapi.json): `python -m wm_service.openapi --write` after an API change; the tests fail
when the checked-in file drifts from what the code serves.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from .app import create_app, fastapi_app
from .config import ServiceConfig

SPEC_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))),
                         "openapi.json")


def spec_of(asgi) -> dict:
    return fastapi_app(asgi).openapi()


def render(spec: dict) -> str:
    return json.dumps(spec, indent=2, sort_keys=True) + "\n"


def generate() -> str:
    """The spec of a service with the built-in defaults, kinematics only (the spec does not
    depend on which models are loaded)."""
    return render(spec_of(create_app(ServiceConfig(models=[], default_model="kinematic"))))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--write", action="store_true", help="rewrite %s" % SPEC_FILE)
    args = ap.parse_args(argv)
    text = generate()
    if args.write:
        with open(SPEC_FILE, "w", encoding="utf-8") as f:
            f.write(text)
        print("wrote %s" % SPEC_FILE)
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
