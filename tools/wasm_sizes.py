#!/usr/bin/env python3
"""Print the biggest functions of a wasm module (needs the `name` section: build without strip).

Usage: wasm_sizes.py module.wasm [top_n]
"""
import sys
from collections import Counter


def leb(data, pos):
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, pos


def sections(data):
    pos = 8
    while pos < len(data):
        sid = data[pos]
        size, pos = leb(data, pos + 1)
        yield sid, data[pos:pos + size]
        pos += size


def main():
    data = open(sys.argv[1], "rb").read()
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    imported = 0
    bodies, names, totals = [], {}, Counter()
    for sid, body in sections(data):
        totals[sid] += len(body)
        if sid == 2:  # imports: count function imports
            count, p = leb(body, 0)
            for _ in range(count):
                for _ in range(2):
                    n, p = leb(body, p)
                    p += n
                kind = body[p]
                p += 1
                if kind == 0:
                    _, p = leb(body, p)
                    imported += 1
                elif kind == 1:
                    p += 1
                    flags, p = leb(body, p)
                    _, p = leb(body, p)
                    if flags & 1:
                        _, p = leb(body, p)
                elif kind == 2:
                    flags, p = leb(body, p)
                    _, p = leb(body, p)
                    if flags & 1:
                        _, p = leb(body, p)
                else:
                    p += 2
        elif sid == 10:
            count, p = leb(body, 0)
            for _ in range(count):
                size, p = leb(body, p)
                bodies.append(size)
                p += size
        elif sid == 0:
            n, p = leb(body, 0)
            if body[p:p + n] != b"name":
                continue
            p += n
            while p < len(body):
                sub = body[p]
                size, p = leb(body, p + 1)
                if sub == 1:
                    q = p
                    count, q = leb(body, q)
                    for _ in range(count):
                        idx, q = leb(body, q)
                        ln, q = leb(body, q)
                        names[idx] = body[q:q + ln].decode("utf-8", "replace")
                        q += ln
                p += size
    print("sections:", {k: v for k, v in sorted(totals.items())})
    ranked = sorted(((s, names.get(i + imported, f"func{i}")) for i, s in enumerate(bodies)), reverse=True)
    for size, name in ranked[:top]:
        print(f"{size:8d}  {name[:150]}")


if __name__ == "__main__":
    main()
