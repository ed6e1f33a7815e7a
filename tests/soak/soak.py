#!/usr/bin/env python3
"""A soak: the server under sustained load with churn, sampled over time.

Run by scripts/soak.sh (see there for the flags). Starts a release server
on a free loopback port and three kinds of load with the real loadgen:

  steady-bin   binary clients for the whole run
  steady-json  JSON clients for the whole run
               both with --reconnect-every: each client drops its socket
               (no close frame) at that mean interval, connects again and
               takes its seat back with `resume`
  churn        back-to-back short runs of a few clients (binary and JSON in
               turn, on two staggered lanes): clients join and leave, and
               rooms are created and disposed of, all the time

Every client rebuilds the state from every tick (--decode-every 1), so a
delta error anywhere fails the soak.

Samples the server every --sample seconds (RSS, open descriptors, rooms,
players, connections, tick durations and closes from /metrics), then
writes, in --out: samples.csv, minutes.csv (one row a minute: RSS and
descriptors at its end, rooms, players, the clients' tick-latency p99 from
the loadgens' per-second reports and the server's tick-duration p99 from
its histogram), summary.json, and soak.svg (the per-minute series).

It fails (exit 1) when, after the warm-up, RSS grows past its bound or the
descriptors past theirs, or when any error appears: a loadgen error of any
kind (a refused resume included), a state that did not stay exact after a
resume, or a server close other than a normal one, a client going away or
(with reconnects) a seat resumed before its old socket's end was read.
"""

import argparse
import bisect
import csv
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

LOADGEN_GRACE = 60  # seconds a loadgen may take past its duration


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port):
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3) as r:
            text = r.read().decode()
    except OSError:
        return None
    series = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$", line)
        if m:
            series[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return series


def total(series, name):
    return sum(v for (n, _), v in series.items() if n == name)


def histogram(series, name):
    """Cumulative buckets [(le, count)] of a Prometheus histogram."""
    out = []
    for (n, labels), v in series.items():
        if n == f"{name}_bucket":
            le = re.search(r'le="([^"]+)"', labels).group(1)
            out.append((float("inf") if le == "+Inf" else float(le), v))
    return sorted(out)


def hist_quantile(before, after, q):
    """The q-quantile's bucket bound of the observations between two
    scrapes of a cumulative histogram (an upper bound, in its unit)."""
    if not before or not after:
        return None
    b = dict(before)
    counts = [(le, c - b.get(le, 0.0)) for le, c in after]
    n = counts[-1][1] if counts else 0
    if n <= 0:
        return None
    for le, c in counts:
        if c >= q * n:
            return le
    return counts[-1][0]


def proc_rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def proc_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


class Loadgen:
    """One loadgen run: its command, process, report."""

    def __init__(self, args, name, clients, fmt, duration, warmup, url, reconnect_every=None):
        self.name = name
        self.path = os.path.join(args.out, "loadgen", f"{name}.json")
        self.logpath = os.path.join(args.out, "loadgen", f"{name}.log")
        self.cmd = [args.loadgen, "--url", url, "--clients", str(clients), "--players-per-room",
                    str(args.players_per_room), "--subprotocol", fmt, "--warmup", f"{warmup}s", "--duration",
                    f"{duration}s", "--json", self.path, "--quiet", "--decode-every", "1"]
        if reconnect_every:
            self.cmd += ["--reconnect-every", f"{reconnect_every}s"]
        self.duration = warmup + duration
        self.started = None
        self.proc = None
        self.report = None
        self.rc = None

    def start(self, t0):
        self.started = time.monotonic() - t0
        self.log = open(self.logpath, "wb")
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT)
        return self

    def wait(self):
        try:
            self.rc = self.proc.wait(timeout=self.duration + LOADGEN_GRACE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.rc = "hung"
        self.log.close()
        if os.path.exists(self.path):
            with open(self.path) as f:
                self.report = json.load(f)
        return self


class Sampler(threading.Thread):
    def __init__(self, pid, port, every, t0):
        super().__init__(daemon=True)
        self.pid, self.port, self.every, self.t0 = pid, port, every, t0
        self.samples = []
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            t = time.monotonic() - self.t0
            s = scrape(self.port)
            self.samples.append({"t": t, "rss_kib": proc_rss_kib(self.pid), "fds": proc_fds(self.pid), "series": s})
            self.halt.wait(self.every)

    def stop(self):
        self.halt.set()
        self.join()


def churn_lane(args, url, t0, lane, stop_at, runs, lock):
    """Back-to-back short loadgen runs until stop_at (seconds since t0)."""
    n = 0
    time.sleep(lane * args.churn_secs / 2)
    while time.monotonic() - t0 + args.churn_secs + 5 < stop_at:
        fmt = "bin" if (n + lane) % 2 == 0 else "json"
        lg = Loadgen(args, f"churn-{lane}-{n:04d}", args.churn_clients, fmt, args.churn_secs, 0, url).start(t0)
        lg.wait()
        with lock:
            runs.append(lg)
        n += 1


def default_clients(root):
    """Half the largest client count that held p99 <= 5 ms in BENCHMARKS.md's
    end-to-end matrix (None when the file does not say)."""
    try:
        with open(os.path.join(root, "BENCHMARKS.md")) as f:
            text = f.read()
    except OSError:
        return None
    m = re.search(r"tick-latency p99 under 5 ms[^*]*\*\*(\d[\d,]*)\*\*", text)
    return int(m.group(1).replace(",", "")) // 2 if m else None


def per_minute(samples, runs, minutes):
    """One row a minute."""
    rows = []
    # The clients' tick-latency p99 per second, from every loadgen's
    # intervals, on the soak's clock.
    secs = {}
    for lg in runs:
        if not lg.report:
            continue
        for iv in lg.report.get("intervals", []):
            if iv["phase"] in ("measure", "warmup") and iv["clients"] > 0:
                t = lg.started + iv["t_secs"]
                secs.setdefault(int(t // 60), []).append(iv["p99_us"])
    times = [s["t"] for s in samples]
    for m in range(minutes):
        lo = bisect.bisect_left(times, m * 60)
        hi = bisect.bisect_right(times, (m + 1) * 60) - 1
        if hi < 0 or lo >= len(samples) or hi < lo:
            continue
        first, last = samples[lo], samples[hi]
        a = first["series"] or {}
        b = last["series"] or {}
        tick_p99 = hist_quantile(histogram(a, "tickforge_tick_duration_seconds"),
                                 histogram(b, "tickforge_tick_duration_seconds"), 0.99)
        p99s = secs.get(m, [])
        rows.append({
            "minute": m + 1,
            "rss_mib": round((last["rss_kib"] or 0) / 1024, 2),
            "fds": last["fds"],
            "rooms": int(total(b, "tickforge_rooms")),
            "players": int(total(b, "tickforge_players")),
            "connections": int(total(b, "tickforge_connections")),
            "client_p99_ms": round(max(p99s) / 1000, 3) if p99s else None,
            "server_tick_p99_ms": round(tick_p99 * 1000, 3) if tick_p99 not in (None, float("inf")) else None,
            "closes": int(total(b, "tickforge_closes_total") - total(a, "tickforge_closes_total")),
        })
    return rows


def svg_plot(rows, path, title):
    """Four stacked panels of the per-minute series, as plain SVG."""
    panels = [
        ("RSS (MiB)", [("rss_mib", "#1f77b4")]),
        ("open descriptors", [("fds", "#2ca02c")]),
        ("rooms, players", [("rooms", "#9467bd"), ("players", "#8c564b")]),
        ("tick p99 (ms)", [("client_p99_ms", "#d62728"), ("server_tick_p99_ms", "#ff7f0e")]),
    ]
    width, ph, left, right, top, gap = 900, 150, 70, 170, 40, 40
    height = top + len(panels) * (ph + gap)
    xs = [r["minute"] for r in rows] or [1]
    x0, x1 = min(xs), max(max(xs), min(xs) + 1)

    def sx(x):
        return left + (x - x0) / (x1 - x0) * (width - left - right)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="20" font-size="14">{title}</text>']
    for k, (label, series) in enumerate(panels):
        y_top = top + k * (ph + gap)
        vals = [r[key] for key, _ in series for r in rows if r.get(key) is not None]
        vmax = max(vals) if vals else 1
        vmax = vmax * 1.1 if vmax > 0 else 1

        def sy(v, y_top=y_top, vmax=vmax):
            return y_top + ph - v / vmax * ph

        out.append(f'<rect x="{left}" y="{y_top}" width="{width - left - right}" height="{ph}" fill="none" '
                   f'stroke="#999"/>')
        out.append(f'<text x="{left - 8}" y="{y_top + 4}" text-anchor="end">{vmax:.3g}</text>')
        out.append(f'<text x="{left - 8}" y="{y_top + ph}" text-anchor="end">0</text>')
        out.append(f'<text x="{width - right + 8}" y="{y_top + 12}" font-weight="bold">{label}</text>')
        for j, (key, colour) in enumerate(series):
            pts = [(sx(r["minute"]), sy(r[key])) for r in rows if r.get(key) is not None]
            if pts:
                d = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
                out.append(f'<polyline points="{d}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
            out.append(f'<text x="{width - right + 8}" y="{y_top + 30 + 14 * j}" fill="{colour}">{key}</text>')
        for m in range(x0, x1 + 1, max(1, (x1 - x0) // 10)):
            out.append(f'<text x="{sx(m):.1f}" y="{y_top + ph + 14}" text-anchor="middle">{m}</text>')
    out.append(f'<text x="{(left + width - right) / 2}" y="{height - 6}" text-anchor="middle">minute</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    p = argparse.ArgumentParser(description="tickforge soak")
    p.add_argument("--server", required=True)
    p.add_argument("--loadgen", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--duration", type=float, required=True, help="seconds")
    p.add_argument("--clients", type=int, default=None,
                   help="total clients (default: half BENCHMARKS.md's largest count under 5 ms, else 50)")
    p.add_argument("--players-per-room", type=int, default=8)
    p.add_argument("--churn-clients", type=int, default=None, help="clients per churn run (default: a tenth)")
    p.add_argument("--churn-secs", type=float, default=20.0, help="length of one churn run")
    p.add_argument("--reconnect-every", type=float, default=60.0,
                   help="mean seconds between a steady client's socket drops and resumes (0: none)")
    p.add_argument("--sample", type=float, default=5.0, help="seconds between samples")
    p.add_argument("--warmup", type=float, default=None, help="seconds before the bounds apply (default: 10 %%, "
                                                               "at least 60 s, at most 5 min)")
    p.add_argument("--rss-growth-mib", type=float, default=32.0, help="RSS bound over the warm-up's")
    p.add_argument("--fd-growth", type=int, default=32, help="descriptor bound over the warm-up's")
    p.add_argument("--root", default=".")
    args = p.parse_args()
    clients = args.clients or default_clients(args.root) or 50
    args.churn_clients = args.churn_clients or max(args.players_per_room, clients // 10)
    steady = max(2, clients - 2 * args.churn_clients)
    steady_bin = max(1, steady * 2 // 3)
    steady_json = max(1, steady - steady_bin)
    warmup = args.warmup if args.warmup is not None else min(300.0, max(60.0, args.duration / 10))
    os.makedirs(os.path.join(args.out, "loadgen"), exist_ok=True)

    port = free_port()
    url = f"ws://127.0.0.1:{port}/ws"
    slog = open(os.path.join(args.out, "server.log"), "wb")
    server = subprocess.Popen([args.server, "--listen", f"127.0.0.1:{port}", "--shards", "1", "--no-pin"],
                              stdout=slog, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while scrape(port) is None:
        if server.poll() is not None or time.monotonic() > deadline:
            print("soak: the server did not start; see server.log", file=sys.stderr)
            return 2
        time.sleep(0.1)
    print(f"soak: {args.duration:.0f} s, {clients} clients ({steady_bin} steady binary, {steady_json} steady JSON, "
          f"2 churn lanes of {args.churn_clients} in {args.churn_secs:.0f} s runs; steady clients reconnect every "
          f"{args.reconnect_every:g} s on average), server pid {server.pid} on "
          f"port {port}; bounds after {warmup:.0f} s: RSS +{args.rss_growth_mib} MiB, descriptors "
          f"+{args.fd_growth}", flush=True)
    t0 = time.monotonic()
    sampler = Sampler(server.pid, port, args.sample, t0)
    sampler.start()
    runs, lock = [], threading.Lock()
    steady_runs = [Loadgen(args, "steady-bin", steady_bin, "bin", args.duration - 2, 2, url,
                           args.reconnect_every).start(t0),
                   Loadgen(args, "steady-json", steady_json, "json", args.duration - 2, 2, url,
                           args.reconnect_every).start(t0)]
    lanes = [threading.Thread(target=churn_lane, args=(args, url, t0, lane, args.duration, runs, lock), daemon=True)
             for lane in range(2)]
    for lane in lanes:
        lane.start()
    last_print = 0.0
    while any(lg.proc.poll() is None for lg in steady_runs):
        time.sleep(1)
        now = time.monotonic() - t0
        if now - last_print >= 60 and sampler.samples:
            last_print = now
            s = sampler.samples[-1]
            se = s["series"] or {}
            print(f"  t={now / 60:5.1f} min  RSS {(s['rss_kib'] or 0) / 1024:7.1f} MiB  fds {s['fds']}  rooms "
                  f"{total(se, 'tickforge_rooms'):.0f}  players {total(se, 'tickforge_players'):.0f}  churn runs "
                  f"{len(runs)}", flush=True)
    for lg in steady_runs:
        lg.wait()
    for lane in lanes:
        lane.join()
    sampler.stop()
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
    slog.close()

    all_runs = steady_runs + runs
    samples = [s for s in sampler.samples if s["series"] is not None]
    minutes = math.ceil(args.duration / 60)
    rows = per_minute(samples, all_runs, minutes)
    with open(os.path.join(args.out, "samples.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t_secs", "rss_kib", "fds", "rooms", "players", "connections", "ticks_total", "closes_total"])
        for s in samples:
            se = s["series"]
            w.writerow([round(s["t"], 1), s["rss_kib"], s["fds"], int(total(se, "tickforge_rooms")),
                        int(total(se, "tickforge_players")), int(total(se, "tickforge_connections")),
                        int(total(se, "tickforge_ticks_total")), int(total(se, "tickforge_closes_total"))])
    if rows:
        with open(os.path.join(args.out, "minutes.csv"), "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)

    failures = []
    after = [s for s in samples if s["t"] >= warmup]
    base = after[0] if after else None
    end = samples[-1] if samples else None
    if not base or not end:
        failures.append("no samples after the warm-up (the run is shorter than the warm-up?)")
    else:
        rss_peak = max(s["rss_kib"] for s in after if s["rss_kib"])
        fd_peak = max(s["fds"] for s in after if s["fds"] is not None)
        if (rss_peak - base["rss_kib"]) / 1024 > args.rss_growth_mib:
            failures.append(f"RSS grew {(rss_peak - base['rss_kib']) / 1024:.1f} MiB after the warm-up "
                            f"(bound {args.rss_growth_mib})")
        if fd_peak - base["fds"] > args.fd_growth:
            failures.append(f"descriptors grew by {fd_peak - base['fds']} after the warm-up (bound {args.fd_growth})")
    errors = {}
    for lg in all_runs:
        if lg.report is None:
            failures.append(f"loadgen {lg.name} wrote no report (exit {lg.rc})")
            continue
        if lg.report["errors_total"]:
            errors[lg.name] = lg.report["errors"]
    if errors:
        failures.append(f"loadgen errors: {json.dumps(errors)}")
    reconnects = {k: sum(lg.report.get("reconnects", {}).get(k, 0) for lg in steady_runs if lg.report)
                  for k in ("drops", "resumes", "refused", "state_errors_after_resume", "slots_skipped")}
    resume_p99 = [lg.report["reconnects"]["resume_latency_us"]["p99"] for lg in steady_runs
                  if lg.report and lg.report.get("reconnects", {}).get("resumes")]
    reconnects["resume_latency_p99_ms_max"] = round(max(resume_p99) / 1000, 3) if resume_p99 else None
    if reconnects["refused"] or reconnects["state_errors_after_resume"]:
        failures.append(f"reconnects: {reconnects['refused']} resumes refused, "
                        f"{reconnects['state_errors_after_resume']} state errors after a resume")
    if args.reconnect_every and not reconnects["resumes"]:
        failures.append("reconnects were asked for but no client resumed its seat")
    bad_closes = {}
    allowed = {"normal", "peer_gone"} | ({"resumed_elsewhere"} if args.reconnect_every else set())
    closes = {}
    if end:
        for (n, labels), v in end["series"].items():
            if n == "tickforge_closes_total" and v > 0:
                reason = re.search(r'reason="([^"]+)"', labels).group(1)
                closes[reason] = int(v)
                if reason not in allowed:
                    bad_closes[reason] = int(v)
    if bad_closes:
        failures.append(f"server closes other than {sorted(allowed)}: {bad_closes}")

    p99s = [r["client_p99_ms"] for r in rows if r["client_p99_ms"] is not None]
    summary = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "duration_secs": args.duration,
        "clients": {"total": clients, "steady_bin": steady_bin, "steady_json": steady_json,
                    "churn_per_run": args.churn_clients, "churn_runs": len(runs),
                    "churn_run_secs": args.churn_secs, "reconnect_every_secs": args.reconnect_every},
        "reconnects": reconnects,
        "server_closes": closes,
        "warmup_secs": warmup,
        "rss_mib": {"start": round(base["rss_kib"] / 1024, 1) if base else None,
                    "end": round(end["rss_kib"] / 1024, 1) if end else None},
        "fds": {"start": base["fds"] if base else None, "end": end["fds"] if end else None},
        "client_p99_ms_per_minute": {"min": min(p99s) if p99s else None, "max": max(p99s) if p99s else None},
        "errors": sum(lg.report["errors_total"] for lg in all_runs if lg.report),
        "failures": failures,
        "host_load": os.getloadavg(),
    }
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    svg_plot(rows, os.path.join(args.out, "soak.svg"),
             f"tickforge soak: {args.duration / 60:.0f} min, {clients} clients with churn ({summary['date']})")
    print(json.dumps(summary, indent=1))
    if failures:
        for f in failures:
            print(f"soak: FAIL: {f}", file=sys.stderr)
        return 1
    print("soak: PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
