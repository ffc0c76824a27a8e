#!/usr/bin/env bash
# Set up (scripts/setup.sh), then run the whole test suite. Kafka is started by the
# test fixtures themselves on a free port (a real single-node KRaft broker).
# pytest-xdist runs the tests on every CPU (-n logical; PYTEST_XDIST_AUTO_NUM_WORKERS
# overrides the count, -n 0 runs them in one process): each worker process starts its own
# broker, Collector and chDB folder when one of its tests needs them.
#
#   bash scripts/test.sh [pytest arguments]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
uv run --frozen ruff check .
uv run --frozen mypy schemas/src producers/src
# Bytecode: where PYTHONDONTWRITEBYTECODE is set (CI's shell sets it), no .pyc is ever
# written, so each of the suite's Python processes (test workers, every `llmpulse worker`,
# demo and CLI it starts) compiled every module it imports from source again: up to 15 CPU
# seconds for one that imports torch and transformers. Written once, they are read after.
unset PYTHONDONTWRITEBYTECODE
exec uv run --frozen pytest -n logical "$@"
