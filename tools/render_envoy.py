#!/usr/bin/env python3
"""Render the repository's envoy.yaml (the bootstrap docker compose mounts) for a local Envoy.

Usage:
    target/pyenv/bin/python tools/render_envoy.py envoy.yaml target/dev/envoy.yaml --plugin plugin.wasm

`make dev` and tests/readme_commands.sh run it; envoy.yaml stays the only hand-edited bootstrap.
It loads the YAML, walks the structure (no line edits) and changes only addresses and paths:

  * every `socket_address` bound to a wildcard (`0.0.0.0`, `::`) -- the listeners, the admin
    interface -- is bound to `--address` (default 127.0.0.1) instead, same port;
  * every cluster endpoint whose address is a DNS name (the compose services `echo-server`,
    `token-server`) points at `--address`, same port. A STRICT_DNS / LOGICAL_DNS cluster whose
    endpoints are then all IP literals becomes STATIC (its `dns_lookup_family` goes with it): there
    is nothing left to resolve, and the cluster is ready as soon as Envoy starts;
  * every wasm `vm_config.code.local.filename` becomes the absolute path of `--plugin`.

Cluster names, ports, routes and the plugin configuration are untouched. It fails (exit 1) when
there is no listener, no wasm filename or no named endpoint to rewrite, so a change to envoy.yaml
that this script no longer understands is noticed instead of producing a half-rendered file.
Needs PyYAML (target/pyenv: `make pyenv`).
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from pathlib import Path
from typing import Any, Iterator

try:
    import yaml
except ImportError:  # environment problem, not a config problem
    sys.exit("render_envoy: FAILED: PyYAML is missing; run `make pyenv` and use target/pyenv/bin/python")

WILDCARDS = {"0.0.0.0", "::", "[::]"}
DNS_TYPES = {"STRICT_DNS", "LOGICAL_DNS"}


def is_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (path, mapping) in the document, depth first."""
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from walk(v, f"{path}.{k}" if path else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, f"{path}[{i}]")


def endpoint_addresses(cluster: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The socket_address mappings of a cluster's load_assignment endpoints."""
    for _, node in walk(cluster.get("load_assignment") or {}):
        sa = node.get("socket_address")
        if isinstance(sa, dict):
            yield sa


def render(doc: dict[str, Any], plugin: Path, address: str) -> list[str]:
    """Rewrites `doc` in place; returns one line per change."""
    changes: list[str] = []
    clusters = (doc.get("static_resources") or {}).get("clusters") or []

    # Endpoints first, so the wildcard pass below only sees listener / admin addresses.
    endpoint_ids = set()
    for cluster in clusters:
        name = cluster.get("name")
        for sa in endpoint_addresses(cluster):
            endpoint_ids.add(id(sa))
            host = str(sa.get("address", ""))
            if not is_ip(host):
                sa["address"] = address
                changes.append(f"cluster {name!r}: endpoint {host}:{sa.get('port_value')} -> {address}")
        if cluster.get("type") in DNS_TYPES and all(is_ip(str(sa.get("address"))) for sa in endpoint_addresses(cluster)):
            changes.append(f"cluster {name!r}: {cluster['type']} -> STATIC")
            cluster["type"] = "STATIC"
            cluster.pop("dns_lookup_family", None)
    if not any(c.startswith("cluster") and "endpoint" in c for c in changes):
        raise AssertionError("no cluster endpoint with a DNS name: nothing to point at the local servers")

    bound = 0
    for where, node in walk(doc):
        sa = node.get("socket_address")
        if isinstance(sa, dict) and id(sa) not in endpoint_ids and str(sa.get("address")) in WILDCARDS:
            changes.append(f"{where}: bind {sa['address']}:{sa.get('port_value')} -> {address}")
            sa["address"] = address
            bound += 1
    if bound == 0:
        raise AssertionError("no listener or admin address on 0.0.0.0 / :: to bind to the local address")

    wasm_files = 0
    for where, node in walk(doc):
        local = (((node.get("vm_config") or {}).get("code") or {}).get("local") or {}) if "vm_config" in node else {}
        if isinstance(local, dict) and "filename" in local:
            changes.append(f"{where}: wasm {local['filename']} -> {plugin}")
            local["filename"] = str(plugin)
            wasm_files += 1
    if wasm_files == 0:
        raise AssertionError("no wasm vm_config.code.local.filename found")
    return changes


class BlockDumper(yaml.SafeDumper):
    """Multi-line strings (the plugin's JSON configuration) as `|` blocks, like envoy.yaml."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


BlockDumper.add_representer(str, _str)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("input", type=Path, help="bootstrap to render (the repository's envoy.yaml)")
    p.add_argument("output", type=Path, help="where to write the rendered bootstrap")
    p.add_argument("--plugin", type=Path, required=True, help="plugin.wasm to load (made absolute)")
    p.add_argument("--address", default="127.0.0.1", help="local IP for listeners, admin and endpoints")
    p.add_argument("--quiet", action="store_true", help="do not list the changes")
    args = p.parse_args(argv[1:])

    if not is_ip(args.address):
        raise AssertionError(f"--address must be an IP literal, not {args.address!r}")
    plugin = args.plugin.resolve()
    if not plugin.is_file():
        raise AssertionError(f"{args.plugin} does not exist; run `make build`")
    docs = [d for d in yaml.safe_load_all(args.input.read_text(encoding="utf-8")) if d is not None]
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise AssertionError(f"{args.input}: expected one YAML mapping (an Envoy bootstrap)")
    doc = docs[0]
    changes = render(doc, plugin, args.address)

    header = (
        f"# GENERATED by tools/render_envoy.py from {args.input} -- do not edit; edit {args.input} instead.\n"
        f"# Local run: addresses -> {args.address}, wasm -> {plugin}.\n"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        header + yaml.dump(doc, Dumper=BlockDumper, sort_keys=False, allow_unicode=True, width=100),
        encoding="utf-8",
    )
    if not args.quiet:
        for c in changes:
            print(f"render_envoy: {c}")
    print(f"render_envoy: wrote {args.output}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except AssertionError as e:
        print(f"render_envoy: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
