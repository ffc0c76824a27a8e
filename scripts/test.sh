#!/usr/bin/env bash
# Set up (scripts/setup.sh), then run the whole test suite. Kafka is started by the
# test fixtures themselves on a free port (a real single-node KRaft broker).
#
#   bash scripts/test.sh [pytest arguments]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
uv run --frozen ruff check .
uv run --frozen mypy schemas/src producers/src
exec uv run --frozen pytest "$@"
