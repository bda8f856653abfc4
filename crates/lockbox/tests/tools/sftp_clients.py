#!/usr/bin/env python3
"""Third-party SFTP clients (paramiko, asyncssh) driven against a Lockbox server, for the
integration tests in tests/suite/sftp_clients.rs. Each subcommand prints one JSON object on stdout and
exits 0 only when everything it checked held; the Rust test asserts on both.

Runs in the venv that .ci/sftp-clients-venv creates (paramiko and asyncssh pinned from PyPI).
Nothing here is Lockbox code: the clients use their own defaults (paramiko's prefetching get and
pipelined put, asyncssh's parallel requests) exactly as a partner's script would.
"""
import argparse
import hashlib
import json
import multiprocessing
import os
import random
import sys
import time


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def random_file(path, size, seed):
    rng = random.Random(seed)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 1 << 20)
            f.write(rng.randbytes(n))
            left -= n


def paramiko_client(args):
    import paramiko

    ssh = paramiko.SSHClient()
    # The server's host key is fresh per test; the tests run on loopback only.
    ssh.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    ssh.connect(
        "127.0.0.1",
        port=args.port,
        username=args.user,
        key_filename=args.key,
        look_for_keys=False,
        allow_agent=False,
        timeout=60,
        banner_timeout=60,
        auth_timeout=60,
    )
    return ssh, ssh.open_sftp()


def cmd_paramiko_roundtrip(args):
    """Default put (pipelined writes) then default get (prefetch: every READ sent at once)."""
    ssh, sftp = paramiko_client(args)
    local = os.path.join(args.workdir, "up.bin")
    back = os.path.join(args.workdir, "down.bin")
    if args.put:
        random_file(local, args.size, 1)
        t = time.monotonic()
        sftp.put(local, args.remote)
        put_s = time.monotonic() - t
        want = sha256_of(local)
    else:
        put_s = None
        want = args.sha256
    t = time.monotonic()
    sftp.get(args.remote, back)
    get_s = time.monotonic() - t
    got = sha256_of(back)
    size = os.path.getsize(back)
    sftp.close()
    ssh.close()
    out = {"size": size, "sha256": got, "want": want, "put_s": put_s, "get_s": get_s}
    print(json.dumps(out))
    return 0 if got == want and size == args.size else 1


class Collector:
    """Receives paramiko's asynchronous responses (what prefetch itself uses)."""

    def __init__(self):
        self.responses = {}

    def _async_response(self, t, msg, num):
        self.responses[num] = (t, msg)


def cmd_paramiko_inflight(args):
    """Sends `count` READs at random offsets (so no two are consecutive) before reading a single
    reply, then checks every one was answered with the right bytes."""
    from paramiko.sftp import CMD_READ, CMD_DATA
    from paramiko.sftp_client import int64

    ssh, sftp = paramiko_client(args)
    local = os.path.join(args.workdir, "src.bin")
    random_file(local, args.size, 2)
    sftp.put(local, args.remote)
    with open(local, "rb") as f:
        content = f.read()
    f = sftp.open(args.remote, "rb")
    handle = f.handle
    rng = random.Random(3)
    collector = Collector()
    wanted = {}
    block = 4096
    for _ in range(args.count):
        offset = rng.randrange(0, args.size - block)
        num = sftp._async_request(collector, CMD_READ, handle, int64(offset), int(block))
        wanted[num] = offset
    deadline = time.monotonic() + args.timeout
    while len(collector.responses) < len(wanted) and time.monotonic() < deadline:
        sftp._read_response()
    wrong, refused = 0, []
    for num, offset in wanted.items():
        t, msg = collector.responses.get(num, (None, None))
        if t == CMD_DATA:
            if msg.get_string() != content[offset:offset + block]:
                wrong += 1
        else:
            refused.append(num if t is None else (msg.get_int(), msg.get_text()))
    f.close()
    sftp.close()
    ssh.close()
    out = {
        "sent": len(wanted),
        "answered": len(collector.responses),
        "wrong": wrong,
        "not_data": len(refused),
        "first_not_data": [str(r) for r in refused[:5]],
    }
    print(json.dumps(out))
    return 0 if out["answered"] == args.count and wrong == 0 and not refused else 1


def _upload_many(job):
    args, proc = job
    import paramiko

    failures = []
    try:
        ssh, sftp = paramiko_client(args)
    except Exception as e:  # a refused login is a failure of every upload of this process
        return [f"connect: {e!r}"] * args.count
    for i in range(args.count):
        name = f"{args.remote}/{args.tag}p{proc}-f{i:04d}.txt"
        data = f"process {proc} file {i}\n".encode() * (1 + (i % 50))
        try:
            with sftp.open(name, "wb") as fh:
                fh.write(data)
            if sftp.stat(name).st_size != len(data):
                failures.append(f"{name}: size")
        except Exception as e:
            failures.append(f"{name}: {e!r}")
    sftp.close()
    ssh.close()
    return failures


def cmd_paramiko_uploads(args):
    """`procs` processes, each its own connection, upload `count` files each into one folder."""
    with multiprocessing.Pool(args.procs) as pool:
        results = pool.map(_upload_many, [(args, p) for p in range(args.procs)])
    failures = [f for r in results for f in r]
    out = {"uploads": args.procs * args.count, "failed": len(failures), "first_failures": failures[:5]}
    print(json.dumps(out))
    return 0 if not failures else 1


def cmd_asyncssh_roundtrip(args):
    """asyncssh's put and get with their default parallelism (many requests in flight)."""
    import asyncio
    import asyncssh

    local = os.path.join(args.workdir, "up.bin")
    back = os.path.join(args.workdir, "down.bin")
    random_file(local, args.size, 4)

    async def run():
        async with asyncssh.connect(
            "127.0.0.1",
            port=args.port,
            username=args.user,
            client_keys=[args.key],
            known_hosts=None,
            agent_path=None,
        ) as conn:
            async with conn.start_sftp_client() as sftp:
                t = time.monotonic()
                await sftp.put(local, args.remote)
                put_s = time.monotonic() - t
                t = time.monotonic()
                await sftp.get(args.remote, back)
                return put_s, time.monotonic() - t

    put_s, get_s = asyncio.run(run())
    want, got = sha256_of(local), sha256_of(back)
    print(json.dumps({"size": os.path.getsize(back), "sha256": got, "want": want, "put_s": put_s, "get_s": get_s}))
    return 0 if want == got else 1


def cmd_paramiko_resume(args):
    """Continues an interrupted upload the way a script using paramiko's file API does: stat the
    remote path for how much arrived, open it for update without truncation ("r+"), seek there and
    write the rest of the local file (--local) at explicit offsets."""
    ssh, sftp = paramiko_client(args)
    local = args.local
    have = sftp.stat(args.remote).st_size
    total = os.path.getsize(local)
    with open(local, "rb") as src, sftp.open(args.remote, "r+") as f:
        f.set_pipelined(True)
        src.seek(have)
        f.seek(have)
        for block in iter(lambda: src.read(32768), b""):
            f.write(block)
    size = sftp.stat(args.remote).st_size
    ssh.close()
    print(json.dumps({"resumed_from": have, "size": size, "total": total}))
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--remote", required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--size", type=int, default=1 << 20)
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--procs", type=int, default=8)
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--put", action="store_true")
    p.add_argument("--sha256")
    p.add_argument("--tag", default="", help="prefix of uploaded names")
    p.add_argument("--local", help="local file (paramiko-resume)")
    args = p.parse_args()
    commands = {
        "paramiko-roundtrip": cmd_paramiko_roundtrip,
        "paramiko-inflight": cmd_paramiko_inflight,
        "paramiko-uploads": cmd_paramiko_uploads,
        "asyncssh-roundtrip": cmd_asyncssh_roundtrip,
        "paramiko-resume": cmd_paramiko_resume,
    }
    if args.command not in commands:
        print(f"unknown command {args.command}", file=sys.stderr)
        return 2
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
