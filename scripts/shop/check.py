#!/usr/bin/env python3
"""Correctness before timing: fetches the home page, every category listing and a sample of
product pages (JSON) from a shop at BASE_URL and compares each with the SPEC's expected page
(`expected.py`), field by field; checks the HTML product page carries the live price and
stock. Exit 0 only if every page matches.

    check.py BASE_URL [LABEL]
"""
import json
import os
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import expected  # noqa: E402

SAMPLE = [0, 1, 7, 42, 123, 499, 500, 777, 998, 999] + list(range(3, 1000, 53))


def get(base, path):
    with urllib.request.urlopen(base + path, timeout=10) as r:
        return r.status, r.read().decode()


def diff(want, got, where=""):
    if isinstance(want, dict) and isinstance(got, dict):
        for k in want.keys() | got.keys():
            if k not in got:
                return f"{where}.{k} missing"
            if k not in want:
                continue  # extra fields are allowed
            d = diff(want[k], got[k], f"{where}.{k}")
            if d:
                return d
        return None
    if isinstance(want, list) and isinstance(got, list):
        if len(want) != len(got):
            return f"{where}: {len(got)} items, expected {len(want)}"
        for n, (w, g) in enumerate(zip(want, got)):
            d = diff(w, g, f"{where}[{n}]")
            if d:
                return d
        return None
    return None if want == got else f"{where}: {got!r}, expected {want!r}"


def main():
    base, label = sys.argv[1].rstrip("/"), (sys.argv[2] if len(sys.argv) > 2 else sys.argv[1])
    pages = [("/shop/api/home", expected.home())]
    pages += [(f"/shop/api/c/cat-{c}", expected.plp(f"cat-{c}")) for c in range(8)]
    pages += [(f"/shop/api/p/p-{i:04}", expected.pdp(f"p-{i:04}")) for i in SAMPLE]
    failures = []
    for path, want in pages:
        try:
            status, body = get(base, path)
            d = f"status {status}" if status != 200 else diff(want, json.loads(body))
        except Exception as e:  # noqa: BLE001 - any failure is a failed check, reported
            d = str(e)
        if d:
            failures.append(f"{path}: {d}")
    status, html = get(base, "/shop/p/p-0042")
    if 'data-price-cents="33991"' not in html or 'data-stock="44"' not in html:
        failures.append("/shop/p/p-0042 HTML: no data-price-cents=\"33991\" data-stock=\"44\"")
    for f in failures[:20]:
        print(f"  {label}: {f}")
    print(f"{label}: {len(pages) + 1 - len(failures)} of {len(pages) + 1} pages as the SPEC says")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
