#!/usr/bin/env python3
"""Runs the calls of docs/harper.md's parity table against a server and checks one column.

    scripts/harper-parity.py URL [USER:PASSWORD] [--column harper|microlith]

URL is a Harper 4.7 serving the shop schema (examples/shop/harper/run.sh start PORT; its
admin is admin:shop-admin) for the "Harper 4.7" column (the default), or a microlith with the
tables the page lists for "microlith". Prints each row with what came back; exits 1 if a row
does not match. Standard library only.
"""
import base64, json, pathlib, re, sys, urllib.error, urllib.request

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "harper.md"


def rows():
    text = DOC.read_text()
    table = text.split("<!-- parity:start -->")[1].split("<!-- parity:end -->")[0]
    for line in table.strip().splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        yield cells[0], cells[1], cells[2].strip("`"), cells[3], cells[4]


def request_of(cell):
    """`METHOD path` [H: v] [H: v] -> (method, path, headers)."""
    m = re.match(r"`(\S+) (\S+)`(.*)", cell)
    headers = dict(h.split(": ", 1) for h in re.findall(r"\[([^\]]+)\]", m.group(3)))
    return m.group(1), m.group(2), headers


def expectation(cell):
    parts = [p.strip() for p in cell.split(" · ")]
    status, body, headers = int(parts[0]), None, []
    for p in parts[1:]:
        if re.match(r"^[A-Za-z-]+: ", p):
            name, value = p.split(": ", 1)
            headers.append((name.lower(), value.rstrip("…")))
        else:
            body = p.strip("`")
    return status, body, headers


def body_matches(want, got, content_type):
    if want is None or want == "text":
        return True
    if want == "problem":
        return content_type.startswith("application/problem+json")
    try:
        value = json.loads(got) if got else None
    except ValueError:
        return False
    if want == "<string>":
        return isinstance(value, str)
    if want.startswith("⊇ "):
        sub = json.loads(want[2:])
        return isinstance(value, dict) and all(value.get(k) == v for k, v in sub.items())
    return value == json.loads(want)


def call(base, auth, method, path, headers, body):
    headers = dict(headers)
    data = body.encode() if body else None
    if data and "Content-Type" not in headers:
        headers["Content-Type"] = "application/json"
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        resp = urllib.request.urlopen(req, timeout=10)
    except urllib.error.HTTPError as e:
        resp = e
    return resp.status, resp.read().decode(errors="replace"), {k.lower(): v for k, v in resp.headers.items()}


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    column = "microlith" if "--column" in sys.argv and sys.argv[sys.argv.index("--column") + 1] == "microlith" else "harper"
    args = [a for a in args if a not in ("harper", "microlith")]
    if not args:
        sys.exit(__doc__)
    base, auth = args[0].rstrip("/"), (args[1] if len(args) > 1 else None)
    failed = 0
    for n, req, body, harper, microlith in rows():
        method, path, headers = request_of(req)
        status, want_body, want_headers = expectation(harper if column == "harper" else microlith)
        got_status, got_body, got_headers = call(base, auth, method, path, headers, body)
        ok = got_status == status and body_matches(want_body, got_body, got_headers.get("content-type", ""))
        ok = ok and all(got_headers.get(h, "").startswith(v) for h, v in want_headers)
        failed += not ok
        print(f"{'ok ' if ok else 'BAD'} {n:>2} {method} {path} -> {got_status} {got_body[:100]}")
    print(f"{failed} of the rows differ from the {column} column")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
