#!/usr/bin/env python3
"""What an HTTP connection costs the server in memory (RSS), idle or after a large request.

    scripts/http-connection-memory.py PORT PID idle N       N connections, one small GET each, left open
    scripts/http-connection-memory.py PORT PID large N KIB  N connections, one PUT of KIB KiB each to
                                                            table T (it must exist), left open

PID is the server's process. Prints the server's RSS before and after, and the growth per
connection. Connections come from 127.0.0.2 onwards, 900 per address, under the default
`limits.http_connections_per_ip`; raise `ulimit -n` for large N. Standard library only.
"""
import socket, sys, time


def rss(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])


def request(i, mode, kib):
    if mode == "idle":
        return b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n"
    body = b'{"blob":"' + b"x" * (kib * 1024) + b'"}'
    head = b"PUT /T/k%d HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    return head % (i, len(body)) + body


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    port, pid, mode, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    kib = int(sys.argv[5]) if mode == "large" else 0
    before, socks = rss(pid), []
    for i in range(n):
        s = socket.socket()
        s.bind((f"127.0.0.{2 + i // 900}", 0))
        s.connect(("127.0.0.1", port))
        s.sendall(request(i, mode, kib))
        s.recv(4096)
        socks.append(s)
    time.sleep(2)
    after = rss(pid)
    what = "idle" if mode == "idle" else f"idle after a {kib} KiB PUT each"
    print(f"{n} connections {what}: RSS {before} KiB -> {after} KiB, {(after - before) * 1024 / n:.0f} bytes each")


if __name__ == "__main__":
    main()
