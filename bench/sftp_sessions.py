#!/usr/bin/env python3
"""Many SFTP sessions uploading at once (asyncssh, one process): opens SESSIONS sessions (spread
over connections, PER_CONN sessions each, from source addresses 127.0.0.2..., handshakes paced so
the server's per-address pre-login cap is not what is measured), waits until all are open, then
every session uploads SIZE bytes to its own file at the same moment. Prints one JSON line: how many
uploads succeeded and were refused (with the first messages), and the wall times.

    sftp_sessions.py --port P --user U --key K --sessions 2000 [--per-conn 1] [--size 1048576]
"""
import argparse
import asyncio
import json
import os
import time

import asyncssh


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--sessions", type=int, required=True)
    p.add_argument("--per-conn", type=int, default=1)
    p.add_argument("--size", type=int, default=1 << 20)
    p.add_argument("--handshakes", type=int, default=16, help="handshakes at once")
    args = p.parse_args()

    data = os.urandom(args.size)
    n_conn = (args.sessions + args.per_conn - 1) // args.per_conn
    gate = asyncio.Semaphore(args.handshakes)
    key = asyncssh.read_private_key(args.key)
    conns, sessions, errors = [], [], []

    async def open_conn(i):
        source = f"127.0.0.{2 + i % 250}"
        async with gate:
            conn = await asyncssh.connect(
                "127.0.0.1",
                port=args.port,
                username=args.user,
                client_keys=[key],
                known_hosts=None,
                agent_path=None,
                local_addr=(source, 0),
                login_timeout=600,
            )
        conns.append(conn)
        want = min(args.per_conn, args.sessions - i * args.per_conn)
        for _ in range(want):
            sessions.append(await conn.start_sftp_client())

    t0 = time.monotonic()
    results = await asyncio.gather(*(open_conn(i) for i in range(n_conn)), return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException):
            errors.append(f"open: {r!r}")
    t_open = time.monotonic() - t0

    async def upload(i, sftp):
        try:
            async with sftp.open(f"/home/s{i:05d}.bin", "wb") as f:
                await f.write(data)
            return None
        except Exception as e:  # the refusal's message is what the report needs
            return repr(e)

    t1 = time.monotonic()
    outcomes = await asyncio.gather(*(upload(i, s) for i, s in enumerate(sessions)))
    t_up = time.monotonic() - t1
    refused = [o for o in outcomes if o]
    for c in conns:
        c.close()
    print(json.dumps({
        "sessions": args.sessions,
        "connections": n_conn,
        "opened": len(sessions),
        "uploaded": len(outcomes) - len(refused),
        "refused": len(refused),
        "open_errors": len(errors),
        "first_errors": (errors + refused)[:3],
        "open_s": round(t_open, 1),
        "upload_s": round(t_up, 1),
    }))


if __name__ == "__main__":
    asyncio.run(main())
