#!/usr/bin/env python3
"""Schema check of envoy.yaml against Envoy's v3 protos, without an Envoy binary.

Loads envoy.yaml into `envoy.config.bootstrap.v3.Bootstrap` with the generated betterproto
classes of the PyPI package `envoy-data-plane`, which rejects unknown fields (a typo such as
`fail_opn` or a field at the wrong level fails) and wrong value types. Every `typed_config`
(`google.protobuf.Any`) is unpacked into its real message, so the HTTP connection manager, the
Wasm filter and the StringValue configuration are checked too.

Usage (`make test-deploy` runs it; `make pyenv` creates target/pyenv from the hash-locked
tests/deploy/requirements.txt):
    target/pyenv/bin/python tests/deploy/check_envoy_bootstrap.py [path/to/envoy.yaml]

Exit status: 0 valid, 1 invalid (message on stderr), 2 envoy-data-plane / PyYAML not installed
(a failure too, never a skip). It only checks the schema; values (addresses, DNS names, file
paths) are not resolved.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[2]

try:
    import yaml
    from envoy_data_plane.envoy.config.bootstrap.v3 import Bootstrap
except ImportError as e:  # pragma: no cover - environment problem, not a config problem
    print(
        f"check_envoy_bootstrap: FAILED: {e}; run `make pyenv` (creates target/pyenv from "
        "tests/deploy/requirements.txt) and use target/pyenv/bin/python",
        file=sys.stderr,
    )
    sys.exit(2)

TYPE_PREFIX = "type.googleapis.com/"


def type_urls(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        t = node.get("@type")
        if isinstance(t, str):
            yield t
        for v in node.values():
            yield from type_urls(v)
    elif isinstance(node, list):
        for v in node:
            yield from type_urls(v)


def register_any_types(doc: Any) -> None:
    """Import the module of every `@type` so betterproto can unpack the Any (import registers it)."""
    for url in sorted(set(type_urls(doc))):
        assert url.startswith(TYPE_PREFIX), f"unexpected type URL {url!r}"
        package, _, name = url.removeprefix(TYPE_PREFIX).rpartition(".")
        try:
            module = importlib.import_module(f"envoy_data_plane.{package}")
        except ImportError as e:
            raise AssertionError(f"unknown proto package for {url}: {e}") from e
        assert hasattr(module, name), f"unknown message {url}"


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else ROOT / "envoy.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    register_any_types(doc)
    try:
        bootstrap = Bootstrap.from_dict(doc)  # unknown fields raise by default
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        raise AssertionError(f"{path.name} is not a valid v3 Bootstrap: {type(e).__name__}: {e}") from e
    # Sanity: the things docker-compose relies on really landed in the message.
    listeners = bootstrap.static_resources.listeners
    assert listeners, "no listeners"
    names = [c.name for c in bootstrap.static_resources.clusters]
    print(f"check_envoy_bootstrap: OK ({len(listeners)} listener(s), clusters {names})")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except AssertionError as e:
        print(f"check_envoy_bootstrap: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
