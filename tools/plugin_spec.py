#!/usr/bin/env python3
"""Generate spec.yaml, the metadata layer of the plugin's Higress OCI image, from the README.

Usage (from anywhere; paths are relative to the repository root):

    target/pyenv/bin/python tools/plugin_spec.py --out target/oci/spec.yaml

`make push` runs it before `oras push`; `make test-deploy` runs it and checks the result with
tests/deploy/check_spec.py. Inputs, all read as they are (no key list is written down here):

  * deploy/oci/spec-info.yaml        apiVersion and info (category, name, titles, descriptions);
  * Cargo.toml [package] version     info.version, the version the image is tagged with;
  * deploy/higress/wasmplugin.yaml   spec.phase and spec.priority (set there, in one place);
  * README.md, "## Configuration reference": its first table (Key | Type | Default | Meaning)
    gives one property of spec.configSchema.openAPIV3Schema per row:
      - Type: `string…`, `boolean`, `integer…` (a range `a–b` or `≥ a` becomes minimum/maximum),
        `array` / `array of <strings|header names|integers|objects…>`, `object…` (`object field → header`
        maps to string values). Any other type stops the generator with the row named: map it here;
      - Default: one code span holding a value of that type (`401`, `false`, `[]`, `Bearer `) becomes
        `default`; anything else (`–`, `none`, "FQDN / service host / cluster name", another key's
        name) gives no `default` and is kept in the description as "Default: …";
      - Meaning: `description` (Markdown kept); the same key's row in README_ZH.md's "## 配置参考"
        table gives `x-description-i18n: {zh-CN: …}` (rows missing there are left without it).
    spec.routeConfigSchema is the same without `_rules_`, which only exists at the top level;
  * deploy/plugin-config.json        the schemas' `example`.

The format is Higress's ("Wasm 插件镜像规范", higress.io docs user/wasm-image-spec): apiVersion
1.0.0, info, spec.phase/priority, spec.configSchema.openAPIV3Schema (OpenAPI 3.0 schema objects),
`x-scope` GLOBAL for keys that only make sense at the top level, `x-<field>-i18n` translations.
Needs PyYAML (target/pyenv: `make pyenv`).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

try:
    import yaml
except ImportError:  # environment problem, not a spec problem
    sys.exit("plugin_spec: FAILED: PyYAML is missing; run `make pyenv` and use target/pyenv/bin/python")

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
README_ZH = ROOT / "README_ZH.md"
CARGO_TOML = ROOT / "Cargo.toml"
SPEC_INFO = ROOT / "deploy" / "oci" / "spec-info.yaml"
WASMPLUGIN_YAML = ROOT / "deploy" / "higress" / "wasmplugin.yaml"
PLUGIN_CONFIG = ROOT / "deploy" / "plugin-config.json"

EN_SECTION = "## Configuration reference"
EN_HEADER = ["Key", "Type", "Default", "Meaning"]
ZH_SECTION = "## 配置参考"
# Keys Higress builds itself (matchRules → `_rules_`): top level only.
GLOBAL_ONLY_PREFIX = "_"
NO_DEFAULT = {"–", "-", "—", "none", ""}


class SpecError(Exception):
    pass


def split_row(line: str) -> list[str]:
    """Cells of a Markdown table row; `\\|` is a literal `|` (GitHub tables, also inside code)."""
    body = line.strip()
    if not (body.startswith("|") and body.endswith("|")):
        raise SpecError(f"not a table row: {line!r}")
    cells = re.split(r"(?<!\\)\|", body[1:-1])
    return [c.strip().replace("\\|", "|") for c in cells]


def section_table(path: Path, heading: str) -> list[list[str]]:
    """Rows (header first, separator dropped) of the first table under `heading`."""
    lines = path.read_text(encoding="utf-8").splitlines()
    try:
        start = next(i for i, l in enumerate(lines) if l.strip() == heading)
    except StopIteration:
        raise SpecError(f"{path.name}: no section {heading!r}") from None
    rows: list[list[str]] = []
    for line in lines[start + 1 :]:
        if line.startswith("## "):
            break
        if line.lstrip().startswith("|"):
            rows.append(split_row(line))
        elif rows:
            break  # the first table is over
    if len(rows) < 3:
        raise SpecError(f"{path.name}: no table with rows under {heading!r}")
    if not all(set(c) <= set("-: ") for c in rows[1]):
        raise SpecError(f"{path.name}: the table under {heading!r} has no header separator row")
    return [rows[0], *rows[2:]]


def code_span(cell: str) -> str | None:
    """The content of a cell that is exactly one code span (`x`), else None."""
    m = re.fullmatch(r"`([^`]*)`", cell.strip())
    return m.group(1) if m else None


def key_of(cell: str, where: str) -> str:
    key = code_span(cell)
    if not key or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        raise SpecError(f"{where}: the Key cell {cell!r} is not one `key` code span")
    return key


def schema_of_type(type_cell: str, where: str) -> dict[str, Any]:
    t = type_cell.strip()
    low = t.lower()
    if low.startswith("string"):
        return {"type": "string"}
    if low.startswith("boolean"):
        return {"type": "boolean"}
    if low.startswith("integer"):
        schema: dict[str, Any] = {"type": "integer"}
        rng = re.search(r"(-?\d+)\s*[–—-]\s*(-?\d+)", t)
        ge = re.search(r"(?:≥|>=)\s*(-?\d+)", t)
        if rng:
            schema["minimum"], schema["maximum"] = int(rng.group(1)), int(rng.group(2))
        elif ge:
            schema["minimum"] = int(ge.group(1))
        return schema
    if low == "array":
        return {"type": "array", "items": {"type": "object"}}
    m = re.fullmatch(r"array of (.+)", low)
    if m:
        what = m.group(1)
        for word, item in (("integer", "integer"), ("object", "object"), ("boolean", "boolean"),
                           ("string", "string"), ("name", "string")):
            if word in what:
                return {"type": "array", "items": {"type": item}}
        raise SpecError(f"{where}: unknown array item type in {type_cell!r}: map it in tools/plugin_spec.py")
    if low.startswith("object"):
        schema = {"type": "object"}
        if "→" in t or "->" in t:  # `object field → header`: a map of strings
            schema["additionalProperties"] = {"type": "string"}
        return schema
    raise SpecError(f"{where}: unknown type {type_cell!r}: map it in tools/plugin_spec.py")


def literal_default(default_cell: str, schema: dict[str, Any]) -> tuple[bool, Any]:
    """(True, value) when the Default cell is one code span holding a value of the schema's type."""
    raw = code_span(default_cell)
    if raw is None:
        return False, None
    kind = schema["type"]
    if kind == "string":
        return True, raw
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return False, None  # e.g. `responseErrorStatusCode`: another key's value
    ok = {
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "array": isinstance(value, list),
        "object": isinstance(value, dict),
    }[kind]
    return (True, value) if ok else (False, None)


def zh_meanings() -> dict[str, str]:
    """Key → 含义 from README_ZH.md's reference table (empty when the file or table is missing)."""
    if not README_ZH.exists():
        return {}
    try:
        header, *rows = section_table(README_ZH, ZH_SECTION)
    except SpecError:
        return {}
    out = {}
    for row in rows:
        if len(row) == len(header) and code_span(row[0]):
            out[code_span(row[0]) or ""] = row[-1]
    return out


def properties_from_readme() -> dict[str, dict[str, Any]]:
    header, *rows = section_table(README, EN_SECTION)
    if header != EN_HEADER:
        raise SpecError(f"README.md {EN_SECTION!r}: header {header} != {EN_HEADER}")
    zh = zh_meanings()
    props: dict[str, dict[str, Any]] = {}
    for row in rows:
        where = f"README.md {EN_SECTION!r} row {row[0]!r}"
        if len(row) != len(EN_HEADER):
            raise SpecError(f"{where}: {len(row)} cells, expected {len(EN_HEADER)}")
        key_cell, type_cell, default_cell, meaning = row
        key = key_of(key_cell, where)
        if key in props:
            raise SpecError(f"{where}: key {key!r} listed twice")
        schema = schema_of_type(type_cell, where)
        prop: dict[str, Any] = {"title": key, **schema}
        has_default, value = literal_default(default_cell, schema)
        description = meaning
        if has_default:
            prop["default"] = value
        elif default_cell.strip() not in NO_DEFAULT:
            description = f"{meaning} Default: {default_cell.strip()}."
        prop["description"] = description
        if key in zh:
            prop["x-description-i18n"] = {"zh-CN": zh[key]}
        if key.startswith(GLOBAL_ONLY_PREFIX):
            prop["x-scope"] = "GLOBAL"
        props[key] = prop
    return props


def cargo_version() -> str:
    with CARGO_TOML.open("rb") as f:
        return tomllib.load(f)["package"]["version"]


def deployed_phase_priority() -> tuple[str, int]:
    docs = [d for d in yaml.safe_load_all(WASMPLUGIN_YAML.read_text(encoding="utf-8")) if d]
    plugins = [d for d in docs if d.get("kind") == "WasmPlugin"]
    if len(plugins) != 1:
        raise SpecError(f"{WASMPLUGIN_YAML.name}: expected one WasmPlugin, found {len(plugins)}")
    spec = plugins[0].get("spec") or {}
    phase, priority = spec.get("phase"), spec.get("priority")
    if not isinstance(phase, str) or not isinstance(priority, int) or isinstance(priority, bool):
        raise SpecError(f"{WASMPLUGIN_YAML.name}: spec.phase (string) and spec.priority (integer) must be set")
    return phase, priority


def build_spec() -> dict[str, Any]:
    info_doc = yaml.safe_load(SPEC_INFO.read_text(encoding="utf-8"))
    info = dict(info_doc["info"])
    info["version"] = cargo_version()
    phase, priority = deployed_phase_priority()
    props = properties_from_readme()
    example = json.loads(PLUGIN_CONFIG.read_text(encoding="utf-8"))
    route_props = {k: v for k, v in props.items() if v.get("x-scope") != "GLOBAL"}
    return {
        "apiVersion": info_doc["apiVersion"],
        "info": info,
        "spec": {
            "phase": phase,
            "priority": priority,
            "configSchema": {"openAPIV3Schema": {"type": "object", "properties": props, "example": example}},
            "routeConfigSchema": {
                "openAPIV3Schema": {"type": "object", "properties": route_props, "example": example}
            },
        },
    }


class _NoAliasDumper(yaml.SafeDumper):
    """configSchema and routeConfigSchema share property objects: write them out twice, no anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


HEADER = (
    "# Generated by tools/plugin_spec.py from README.md / README_ZH.md (configuration reference),\n"
    "# Cargo.toml, deploy/oci/spec-info.yaml and deploy/higress/wasmplugin.yaml: do not edit.\n"
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", "-o", type=Path, help="write here (default: stdout)")
    args = p.parse_args(argv)
    try:
        spec = build_spec()
    except (SpecError, KeyError, OSError, json.JSONDecodeError, yaml.YAMLError) as e:
        print(f"plugin_spec: FAILED: {e}", file=sys.stderr)
        return 1
    text = HEADER + yaml.dump(spec, Dumper=_NoAliasDumper, sort_keys=False, allow_unicode=True, width=100)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
        n = len(spec["spec"]["configSchema"]["openAPIV3Schema"]["properties"])
        print(f"plugin_spec: wrote {args.out} ({n} configuration keys, version {spec['info']['version']})")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
