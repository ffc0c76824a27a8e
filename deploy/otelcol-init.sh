#!/bin/sh
# One shot before the Collector in docker-compose.yml (service otelcol-init, as root).
# The official contrib image runs as uid 10001 (OTELCOL_UID/OTELCOL_GID pick another), so:
#   1. the tokens file must hold no line the Collector would read as another token
#      (llmpulse otlp check-tokens: no comment lines, docs/SEND_OPENTELEMETRY.md);
#   2. the named volume of the persistent sending queue, created root-owned, is given to
#      that user (else file_storage fails with "permission denied", contrib issue #40381);
#   3. the tokens file, bind-mounted with its host owner and mode (chmod 600), must be
#      readable by that user: say how to fix it instead of a Collector that answers 401.
#
#   otelcol-init.sh [QUEUE_DIR] [TOKENS_FILE]
set -eu
uid="${OTELCOL_UID:-10001}"
gid="${OTELCOL_GID:-10001}"
queue="${1:-/var/lib/otelcol/queue}"
tokens="${2:-/run/secrets/otel_tokens}"

llmpulse otlp check-tokens "$tokens"
chown -R "$uid:$gid" "$queue"
chmod 700 "$queue"
if ! setpriv --reuid="$uid" --regid="$gid" --clear-groups test -r "$tokens"; then
    echo "otelcol-init: the tokens file is not readable by the Collector's user $uid:" >&2
    echo "  sudo chown $uid otel-tokens (it stays chmod 600), or run the Collector as its" >&2
    echo "  owner: OTELCOL_UID=\$(id -u) OTELCOL_GID=\$(id -g) docker compose up -d" >&2
    exit 1
fi
echo "otelcol-init: queue $queue owned by $uid:$gid, tokens file readable by it"
