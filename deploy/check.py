#!/usr/bin/env python3
"""Structural checks of the deployment files, beyond their schemas.

Run by scripts/deploy-check.sh after hadolint (Dockerfile), the compose
specification's JSON schema (docker-compose.yml) and the Kubernetes schemas
(kubernetes/*.yaml): that the compose file runs Redis and three nodes, each
with its own public URL and node id; that the manifests hold the expected
kinds, with /healthz probes on the server's port and a non-root user; and
that the Dockerfile is multi-stage with a non-root runtime user.
"""
import pathlib
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def flag(args, name):
    """The value of --name in an argument list (--name=v or --name v)."""
    for i, a in enumerate(args):
        if a.startswith(f"--{name}="):
            return a.split("=", 1)[1]
        if a == f"--{name}" and i + 1 < len(args):
            return args[i + 1]
    return None


# docker-compose.yml: Redis and three tickforge nodes.
compose = yaml.safe_load((ROOT / "deploy/docker-compose.yml").read_text())
services = compose["services"]
check("redis" in services, "compose: a redis service")
nodes = {n: s for n, s in services.items() if "tickforge" in str(s.get("image", ""))}
check(len(nodes) == 3, f"compose: three tickforge nodes, found {sorted(nodes)}")
urls, ids = set(), set()
for name, s in nodes.items():
    cmd = s.get("command", [])
    check(flag(cmd, "config") == "/etc/tickforge/tickforge.toml", f"compose {name}: --config")
    urls.add(flag(cmd, "public-url"))
    ids.add(flag(cmd, "node-id"))
    check("seccomp=unconfined" in s.get("security_opt", []), f"compose {name}: io_uring allowed")
    check(s.get("ulimits", {}).get("memlock") == -1, f"compose {name}: memlock unlimited")
    check(s.get("depends_on", {}).get("redis", {}).get("condition") == "service_healthy", f"compose {name}: waits for redis")
check(len(urls) == 3 and None not in urls, f"compose: distinct public URLs {urls}")
check(len(ids) == 3 and None not in ids, f"compose: distinct node ids {ids}")

# Kubernetes manifests: the expected kinds, probes and user.
docs = []
for f in sorted((ROOT / "deploy/kubernetes").glob("*.yaml")):
    docs += [d for d in yaml.safe_load_all(f.read_text()) if d]
kinds = sorted(d["kind"] for d in docs)
check(kinds == ["ConfigMap", "Deployment", "Deployment", "Service", "Service"], f"kubernetes: kinds {kinds}")
server = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "tickforge"]
check(len(server) == 1, "kubernetes: the tickforge Deployment")
if server:
    pod = server[0]["spec"]["template"]["spec"]
    c = pod["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    for probe in ("readinessProbe", "livenessProbe"):
        get = c.get(probe, {}).get("httpGet", {})
        check(get.get("path") == "/healthz" and get.get("port") in ports, f"kubernetes: {probe} on /healthz")
    check(ports.get("http") == 7700, "kubernetes: the health port is the server's port 7700")
    check(pod["securityContext"].get("runAsNonRoot") is True, "kubernetes: runAsNonRoot")
    check(flag(c["args"], "config") == "/etc/tickforge/tickforge.toml", "kubernetes: --config from the ConfigMap")
    check(flag(c["args"], "public-url") == "ws://$(POD_IP):7700/ws", "kubernetes: each pod's own public URL")

# Dockerfile: multi-stage, non-root at run time.
lines = [l.strip() for l in (ROOT / "Dockerfile").read_text().splitlines()]
froms = [l for l in lines if l.upper().startswith("FROM ")]
check(len(froms) >= 2, "Dockerfile: multi-stage")
users = [l.split()[1] for l in lines if l.upper().startswith("USER ")]
check(bool(users) and users[-1].split(":")[0] not in ("root", "0"), f"Dockerfile: non-root USER {users}")
check(any("COPY --from=build" in l for l in lines), "Dockerfile: the runtime copies only the binary")

if failures:
    for f in failures:
        print(f"deploy/check.py: FAILED: {f}", file=sys.stderr)
    sys.exit(1)
print(f"deploy/check.py: compose (redis + {len(nodes)} nodes), {len(docs)} Kubernetes objects, Dockerfile ({len(froms)} stages): ok")
