#!/usr/bin/env python3
"""A small fault-injecting TCP proxy for tickforge's fault tests.

Each accepted connection is forwarded to the upstream address and given a
role, taken in turn from --roles (cycled over connections in accept order):

  delay   every chunk waits --delay-ms +- --jitter-ms (uniform) in each
          direction; order is kept (a chunk never overtakes the previous one)
  bytes   as delay, and every byte is written on its own (one byte at a time)
  stall   as delay, and every --stall-every seconds forwarding stops for
          --stall-secs in both directions
  reset   as delay, then after --reset-after seconds both sockets are closed
          with a RST (SO_LINGER 0)

The proxy runs until SIGTERM or SIGINT, then writes its figures as JSON to
--stats (connections by role, bytes each way, resets, the largest delay
queue) and exits 0.

  proxy.py --listen 127.0.0.1:9000 --upstream 127.0.0.1:7700 \
           --roles delay,delay,bytes,stall,reset --stats proxy.json
"""

import argparse
import asyncio
import json
import random
import signal
import socket
import struct
import sys
import time

ROLES = ("delay", "bytes", "stall", "reset")


def parse_addr(text):
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return host, int(port)


def parse_roles(text):
    roles = [r.strip() for r in text.split(",") if r.strip()]
    bad = [r for r in roles if r not in ROLES]
    if not roles or bad:
        raise argparse.ArgumentTypeError(f"roles must be a comma list of {', '.join(ROLES)}; got {text!r}")
    return roles


class Stats:
    def __init__(self):
        self.connections = {r: 0 for r in ROLES}
        self.upstream_failures = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self.resets = 0
        self.stalls = 0
        self.max_queue = 0
        self.open = 0

    def as_dict(self):
        return dict(self.__dict__)


class Link:
    """One direction of one connection: chunks read, delayed, written."""

    def __init__(self, args, role, reader, writer, count, stats, paused):
        self.args = args
        self.role = role
        self.reader = reader
        self.writer = writer
        self.count = count
        self.stats = stats
        self.paused = paused
        self.queue = asyncio.Queue()
        self.last_due = 0.0

    async def read(self):
        loop = asyncio.get_running_loop()
        try:
            while True:
                chunk = await self.reader.read(65536)
                if not chunk:
                    break
                delay = self.args.delay_ms + random.uniform(-self.args.jitter_ms, self.args.jitter_ms)
                due = max(self.last_due, loop.time() + max(0.0, delay) / 1000.0)
                self.last_due = due
                self.queue.put_nowait((due, chunk))
                self.stats.max_queue = max(self.stats.max_queue, self.queue.qsize())
        except (ConnectionError, OSError):
            pass
        self.queue.put_nowait((None, b""))

    async def write(self):
        loop = asyncio.get_running_loop()
        try:
            while True:
                due, chunk = await self.queue.get()
                if due is None:
                    break
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                await self.paused.wait()
                if self.role == "bytes":
                    for i in range(len(chunk)):
                        self.writer.write(chunk[i : i + 1])
                        await self.writer.drain()
                else:
                    self.writer.write(chunk)
                    await self.writer.drain()
                self.count(len(chunk))
        except (ConnectionError, OSError):
            pass
        try:
            if self.writer.can_write_eof():
                self.writer.write_eof()
        except (ConnectionError, OSError):
            pass


def rst_close(writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.close()


async def handle(args, stats, index, client_reader, client_writer):
    role = args.roles[index % len(args.roles)]
    stats.connections[role] += 1
    try:
        up_reader, up_writer = await asyncio.open_connection(*args.upstream)
    except OSError:
        stats.upstream_failures += 1
        client_writer.close()
        return
    stats.open += 1
    for w in (client_writer, up_writer):
        sock = w.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    paused = asyncio.Event()
    paused.set()

    def up(n):
        stats.bytes_up += n

    def down(n):
        stats.bytes_down += n

    links = [
        Link(args, role, client_reader, up_writer, up, stats, paused),
        Link(args, role, up_reader, client_writer, down, stats, paused),
    ]
    tasks = [asyncio.create_task(c) for link in links for c in (link.read(), link.write())]
    extra = []
    if role == "stall":

        async def stall():
            while True:
                await asyncio.sleep(args.stall_every)
                paused.clear()
                stats.stalls += 1
                await asyncio.sleep(args.stall_secs)
                paused.set()

        extra.append(asyncio.create_task(stall()))
    if role == "reset":

        async def reset():
            await asyncio.sleep(args.reset_after)
            stats.resets += 1
            rst_close(client_writer)
            rst_close(up_writer)

        extra.append(asyncio.create_task(reset()))
    await asyncio.gather(*tasks, return_exceptions=True)
    for t in extra:
        t.cancel()
    for w in (client_writer, up_writer):
        try:
            w.close()
        except (ConnectionError, OSError):
            pass
    stats.open -= 1


async def main(args):
    stats = Stats()
    counter = iter(range(1 << 62))
    server = await asyncio.start_server(
        lambda r, w: handle(args, stats, next(counter), r, w), args.listen[0], args.listen[1], backlog=1024
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"proxy.py: {args.listen[0]}:{args.listen[1]} -> {args.upstream[0]}:{args.upstream[1]}, "
          f"roles {','.join(args.roles)}, delay {args.delay_ms} +- {args.jitter_ms} ms", flush=True)
    started = time.monotonic()
    await stop.wait()
    server.close()
    result = stats.as_dict()
    result["seconds"] = round(time.monotonic() - started, 1)
    if args.stats:
        with open(args.stats, "w") as f:
            json.dump(result, f, indent=1)
    print(f"proxy.py: {json.dumps(result)}", flush=True)


def cli():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--listen", type=parse_addr, required=True, help="HOST:PORT to accept on")
    p.add_argument("--upstream", type=parse_addr, required=True, help="HOST:PORT to forward to")
    p.add_argument("--roles", type=parse_roles, default=["delay"], help="comma list cycled over connections")
    p.add_argument("--delay-ms", type=float, default=100.0, help="added delay per chunk, each way (default 100)")
    p.add_argument("--jitter-ms", type=float, default=30.0, help="+- uniform jitter on the delay (default 30)")
    p.add_argument("--stall-every", type=float, default=6.0, help="seconds between stalls (role stall)")
    p.add_argument("--stall-secs", type=float, default=2.0, help="length of a stall (role stall)")
    p.add_argument("--reset-after", type=float, default=8.0, help="seconds before a RST (role reset)")
    p.add_argument("--seed", type=int, default=1, help="jitter's random seed")
    p.add_argument("--stats", help="write the figures as JSON here on exit")
    args = p.parse_args()
    if args.jitter_ms < 0 or args.delay_ms < 0:
        p.error("--delay-ms and --jitter-ms must not be negative")
    random.seed(args.seed)
    try:
        asyncio.run(main(args))
    except OSError as e:
        print(f"proxy.py: cannot listen on {args.listen[0]}:{args.listen[1]}: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    cli()
