#!/usr/bin/env bash
# The real OpenTelemetry Collector (a small distribution built from the Collector's Go
# modules, see tools/otelcol/main.go) on 127.0.0.1, with llmpulse's config deploy/otelcol.yaml.
#
#   scripts/otelcol.sh fetch                      (download the Go modules)
#   scripts/otelcol.sh build                      (tools/otelcol/bin/llmpulse-otelcol; cached)
#   scripts/otelcol.sh start --dir D --bootstrap HOST:PORT --tokens FILE
#        [--http 127.0.0.1:4318] [--grpc 127.0.0.1:4317] [--metrics-port 8888]
#        [--prefix P] [--config deploy/otelcol.yaml] [--timeout 60]
#   scripts/otelcol.sh stop --dir D [--timeout 30]
#   scripts/otelcol.sh status --dir D             (exit 0 running, 3 stopped, 4 not answering yet)
#
# Layout of D: otelcol.env (the settings of the last start, reused by a start without
# them), otelcol.pid, otelcol.log, queue/ (the persistent sending queue, kept across restarts).
# The build is cached: it is redone only when main.go, go.mod, go.sum or the Go version
# change (Go's own caches, ~/go/pkg/mod and ~/.cache/go-build, make a rebuild quick).
# Engineers on a shared machine run `build` under `flock /tmp/llmpulse-heavy.lock`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/tools/otelcol"
BIN="$TOOLS/bin/llmpulse-otelcol"
STAMP="$TOOLS/bin/.build-stamp"
# shellcheck source=scripts/lib/daemon.sh
source "$ROOT/scripts/lib/daemon.sh"

die() { echo "otelcol.sh: $*" >&2; exit 1; }
usage() { sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

need_go() {
    if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
        export PATH="/usr/local/go/bin:$PATH"  # the official tarball's place, often not on PATH
    fi
    command -v go >/dev/null || die "go not found (needed to build the Collector; Debian: apt-get install golang-go, or the Go toolchain >= 1.26)"
}

build_key() {
    { cat "$TOOLS/main.go" "$TOOLS/go.mod" "$TOOLS/go.sum"; go version; } | sha256sum | cut -d' ' -f1
}

cmd_fetch() {
    need_go
    (cd "$TOOLS" && go mod download)
}

cmd_build() {
    need_go
    local key
    key="$(build_key)"
    if [[ -x "$BIN" && -f "$STAMP" && "$(cat "$STAMP")" == "$key" ]]; then
        echo "otelcol.sh: $BIN is up to date" >&2
        return 0
    fi
    echo "otelcol.sh: building the Collector into $BIN (a few minutes the first time)" >&2
    mkdir -p "$(dirname "$BIN")"
    local t0=$SECONDS
    (cd "$TOOLS" && go build -trimpath -ldflags="-s -w" -o "$BIN.tmp" .)
    mv "$BIN.tmp" "$BIN"
    echo "$key" >"$STAMP"
    echo "otelcol.sh: built in $((SECONDS - t0))s ($(du -h "$BIN" | cut -f1))" >&2
}

# pid of the Collector of dir $1 if it is running, else nothing (a stale pid file is removed).
running_pid() { daemon_pid "$1/otelcol.pid" "llmpulse-otelcol"; }

envval() { # envval FILE KEY
    [[ -f "$1" ]] || return 0
    sed -n "s/^export $2=//p" "$1" | tail -n 1 | sed "s/^'//; s/'\$//"
}

# Where the Collector of dir $1 answers OTLP/HTTP, for `status`: host, port, label.
endpoint() {
    local http
    http="$(envval "$1/otelcol.env" LLMPULSE_OTEL_HTTP_ENDPOINT)"
    echo "${http%:*} ${http##*:} http=$http"
}

cmd_start() {
    local dir="" bootstrap="" tokens="" http="" grpc="" metrics="" prefix="" config=""
    local timeout="${OTELCOL_START_TIMEOUT:-60}"
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --dir) dir="$2"; shift 2 ;;
            --bootstrap) bootstrap="$2"; shift 2 ;;
            --tokens) tokens="$2"; shift 2 ;;
            --http) http="$2"; shift 2 ;;
            --grpc) grpc="$2"; shift 2 ;;
            --metrics-port) metrics="$2"; shift 2 ;;
            --prefix) prefix="$2"; shift 2 ;;
            --config) config="$2"; shift 2 ;;
            --timeout) timeout="$2"; shift 2 ;;
            *) usage ;;
        esac
    done
    [[ -n "$dir" ]] || usage
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    local saved="$dir/otelcol.env"
    bootstrap="${bootstrap:-$(envval "$saved" LLMPULSE_BOOTSTRAP_SERVERS)}"
    tokens="${tokens:-$(envval "$saved" LLMPULSE_OTEL_TOKENS_FILE)}"
    http="${http:-$(envval "$saved" LLMPULSE_OTEL_HTTP_ENDPOINT)}"
    grpc="${grpc:-$(envval "$saved" LLMPULSE_OTEL_GRPC_ENDPOINT)}"
    metrics="${metrics:-$(envval "$saved" LLMPULSE_OTEL_METRICS_PORT)}"
    prefix="${prefix:-$(envval "$saved" LLMPULSE_TOPIC_PREFIX)}"
    config="${config:-$(envval "$saved" OTELCOL_CONFIG)}"
    http="${http:-127.0.0.1:4318}"; grpc="${grpc:-127.0.0.1:4317}"; metrics="${metrics:-8888}"
    config="${config:-$ROOT/deploy/otelcol.yaml}"
    [[ -n "$bootstrap" ]] || die "--bootstrap HOST:PORT is required"
    [[ -n "$tokens" && -r "$tokens" ]] || die "--tokens FILE is required and must be readable"
    [[ -f "$config" ]] || die "no config $config"
    # bearertokenauth takes the first field of every line as a valid token, comments
    # included: refuse a file the OTLP stage would read otherwise (docs/SEND_OPENTELEMETRY.md).
    if command -v llmpulse >/dev/null; then
        llmpulse otlp check-tokens "$tokens" >/dev/null || die "fix the tokens file $tokens first"
    else
        echo "otelcol.sh: llmpulse not on PATH, $tokens not checked (llmpulse otlp check-tokens)" >&2
    fi

    local pid
    pid="$(running_pid "$dir")"
    if [[ -n "$pid" ]]; then
        echo "otelcol.sh: Collector already running (pid $pid) from $dir"
        return 0
    fi
    [[ -x "$BIN" ]] || cmd_build
    local host="${http%:*}" port="${http##*:}"
    if port_open "$host" "$port"; then die "$http is already in use"; fi

    cat >"$saved" <<EOF
export LLMPULSE_BOOTSTRAP_SERVERS='$bootstrap'
export LLMPULSE_OTEL_TOKENS_FILE='$tokens'
export LLMPULSE_OTEL_HTTP_ENDPOINT='$http'
export LLMPULSE_OTEL_GRPC_ENDPOINT='$grpc'
export LLMPULSE_OTEL_METRICS_PORT='$metrics'
export LLMPULSE_OTEL_QUEUE_DIR='$dir/queue'
export LLMPULSE_TOPIC_PREFIX='$prefix'
export OTELCOL_CONFIG='$config'
EOF
    local log="$dir/otelcol.log" offset=0
    [[ -f "$log" ]] && offset="$(stat -c %s "$log")"
    # shellcheck disable=SC1090
    (set -a; source "$saved"; exec nohup "$BIN" --config "$config" >>"$log" 2>&1 </dev/null) &
    pid=$!
    echo "$pid" >"$dir/otelcol.pid"
    local deadline=$((SECONDS + timeout))
    while :; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 40 "$log" >&2 || true
            rm -f "$dir/otelcol.pid"
            die "the Collector exited during startup"
        fi
        if tail -c +"$((offset + 1))" "$log" | grep -q "Everything is ready" && port_open "$host" "$port"; then
            break
        fi
        if ((SECONDS >= deadline)); then
            tail -n 40 "$log" >&2 || true
            kill -TERM "$pid" 2>/dev/null || true
            rm -f "$dir/otelcol.pid"
            die "the Collector is not ready after ${timeout}s"
        fi
        sleep 0.1
    done
    echo "otelcol.sh: Collector ready on OTLP/HTTP $http, OTLP/gRPC $grpc (pid $pid)"
}

cmd_stop() { daemon_cmd_stop otelcol.sh Collector otelcol.pid "${OTELCOL_STOP_TIMEOUT:-30}" "$@"; }

cmd_status() { daemon_cmd_status "$@"; }

[[ $# -ge 1 ]] || usage
sub="$1"; shift
case "$sub" in
    fetch) cmd_fetch "$@" ;;
    build) cmd_build "$@" ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status "$@" ;;
    *) usage ;;
esac
