#!/usr/bin/env bash
# A real single-node Apache Kafka broker (KRaft, broker+controller) on 127.0.0.1,
# run from the jars that tools/kafka/pom.xml fetches from Maven Central.
#
#   scripts/kafka.sh fetch
#   scripts/kafka.sh start --port P [--controller-port C] --dir D [--heap 512m] [--timeout 60]
#   scripts/kafka.sh stop --dir D [--timeout 30]
#   scripts/kafka.sh status --dir D        (exit 0 running, 3 stopped, 4 not answering yet)
#
# Layout of D: server.properties, cluster.id, data/ (log.dirs, KRaft metadata),
# logs/server.log (log4j2), broker.out (JVM stdout/stderr), broker.pid.
# `start` formats data/ only when it is not formatted yet, so a restart keeps
# the topics and records. Without --controller-port, a restart reuses the
# controller port in D/server.properties (it is part of the formatted quorum),
# and a first start picks a free one.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/tools/kafka"
LIB="$TOOLS/target/lib"
LOG4J2="$TOOLS/log4j2.xml"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
# shellcheck source=scripts/lib/daemon.sh
source "$ROOT/scripts/lib/daemon.sh"

die() { echo "kafka.sh: $*" >&2; exit 1; }
usage() { sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

cmd_fetch() {
    if compgen -G "$LIB/kafka_2.13-*.jar" >/dev/null; then
        return 0
    fi
    command -v mvn >/dev/null || die "mvn not found (needed once to fetch Kafka from Maven Central)"
    echo "kafka.sh: fetching Kafka jars into $LIB" >&2
    mvn -q -B -Dstyle.color=never -f "$TOOLS/pom.xml" package >&2
    compgen -G "$LIB/kafka_2.13-*.jar" >/dev/null || die "mvn package did not produce $LIB"
}

# A free TCP port on 127.0.0.1 (the kernel picks it).
free_port() {
    if command -v python3 >/dev/null; then
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
        return
    fi
    local p i
    for i in $(seq 1 200); do
        p=$((20000 + RANDOM % 40000))
        if ! port_open 127.0.0.1 "$p"; then echo "$p"; return; fi
    done
    die "no free port found"
}

# pid of the broker of dir $1 if it is running, else nothing (and a stale pid file is removed).
running_pid() { daemon_pid "$1/broker.pid" "kafka.Kafka $1/server.properties"; }

# Where the broker of dir $1 answers, for `status`: host, port, label.
endpoint() {
    local port
    port="$(prop "$1/server.properties" listeners)"
    port="${port#PLAINTEXT://127.0.0.1:}"
    echo "127.0.0.1 ${port%%,*} bootstrap=127.0.0.1:${port%%,*}"
}

prop() { # prop FILE KEY -> value or nothing
    [[ -f "$1" ]] || return 0
    sed -n "s/^$2=//p" "$1" | tail -n 1
}

new_cluster_id() { # base64url of 16 random bytes, 22 chars, not starting with '-' (like Uuid.randomUuid)
    local id
    while :; do
        id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
        [[ "$id" != -* ]] && { echo "$id"; return; }
    done
}

show_logs() {
    local dir="$1"
    echo "---- $dir/logs/server.log (tail) ----" >&2
    tail -n 40 "$dir/logs/server.log" >&2 2>/dev/null || echo "(none)" >&2
    echo "---- $dir/broker.out (tail) ----" >&2
    tail -n 40 "$dir/broker.out" >&2 2>/dev/null || echo "(none)" >&2
}

cmd_start() {
    local port="" cport="" dir="" heap="512m" timeout="${KAFKA_START_TIMEOUT:-60}"
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --port) port="$2"; shift 2 ;;
            --controller-port) cport="$2"; shift 2 ;;
            --dir) dir="$2"; shift 2 ;;
            --heap) heap="$2"; shift 2 ;;
            --timeout) timeout="$2"; shift 2 ;;
            *) usage ;;
        esac
    done
    [[ -n "$port" && -n "$dir" ]] || usage
    [[ "$port" =~ ^[0-9]+$ ]] || die "bad --port: $port"
    mkdir -p "$dir/logs" "$dir/data"
    dir="$(cd "$dir" && pwd)"
    local props="$dir/server.properties"

    local pid
    pid="$(running_pid "$dir")"
    if [[ -n "$pid" ]]; then
        if [[ "$(prop "$props" listeners)" == *"PLAINTEXT://127.0.0.1:$port,"* ]]; then
            echo "kafka.sh: broker already running (pid $pid) on 127.0.0.1:$port"
            return 0
        fi
        die "a broker (pid $pid) already runs from $dir on another port; stop it first"
    fi

    cmd_fetch
    if port_open 127.0.0.1 "$port"; then
        die "port $port on 127.0.0.1 is already in use"
    fi
    if [[ -z "$cport" ]]; then
        cport="$(prop "$props" controller.quorum.bootstrap.servers)"
        cport="${cport##*:}"
        if [[ -z "$cport" ]] || port_open 127.0.0.1 "$cport" || [[ "$cport" == "$port" ]]; then
            cport="$(free_port)"
            [[ "$cport" != "$port" ]] || cport="$(free_port)"
        fi
    fi
    [[ "$cport" != "$port" ]] || die "--controller-port must differ from --port"

    cat >"$props" <<EOF
# Written by scripts/kafka.sh: single-node KRaft (combined broker+controller) for tests.
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
controller.quorum.bootstrap.servers=127.0.0.1:$cport
log.dirs=$dir/data
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=168
EOF

    if [[ ! -f "$dir/data/meta.properties" ]]; then
        local cid
        cid="$(cat "$dir/cluster.id" 2>/dev/null || true)"
        [[ -n "$cid" ]] || { cid="$(new_cluster_id)"; echo "$cid" >"$dir/cluster.id"; }
        if ! "$JAVA" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
            -Dlog4j2.configurationFile="$LOG4J2" -Dkafka.logs.dir="$dir/logs" \
            -cp "$LIB/*" kafka.tools.StorageTool format -t "$cid" -c "$props" --standalone \
            >"$dir/format.out" 2>&1; then
            cat "$dir/format.out" >&2
            die "formatting $dir/data failed"
        fi
    fi

    # Only log lines written by this start count as "started".
    local log="$dir/logs/server.log" offset=0
    [[ -f "$log" ]] && offset="$(stat -c %s "$log")"

    local t0 t1
    t0="$(date +%s%N)"
    # KAFKA_JVM_OPTS: extra JVM flags, e.g. -XX:TieredStopAtLevel=1 (C1 only: ~1.5 s faster
    # start on a busy 2-core machine, lower peak throughput).
    # shellcheck disable=SC2086
    nohup "$JAVA" -Xms"$heap" -Xmx"$heap" -XX:+UseSerialGC -XX:+ExitOnOutOfMemoryError \
        -Djava.awt.headless=true -Dlog4j2.shutdownHookEnabled=false ${KAFKA_JVM_OPTS:-} \
        -Dlog4j2.configurationFile="$LOG4J2" -Dkafka.logs.dir="$dir/logs" \
        -cp "$LIB/*" kafka.Kafka "$props" >"$dir/broker.out" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$dir/broker.pid"

    local deadline=$((SECONDS + timeout)) started=""
    while :; do
        if ! kill -0 "$pid" 2>/dev/null; then
            show_logs "$dir"
            rm -f "$dir/broker.pid"
            die "broker exited during startup"
        fi
        if [[ -z "$started" && -f "$log" ]]; then
            local size from=$((offset + 1))
            size="$(stat -c %s "$log")"
            ((size >= offset)) || from=1 # rolled over
            if tail -c +"$from" "$log" | grep -q "Kafka Server started"; then started=1; fi
        fi
        if [[ -n "$started" ]] && port_open 127.0.0.1 "$port"; then
            break
        fi
        if ((SECONDS >= deadline)); then
            show_logs "$dir"
            kill -TERM "$pid" 2>/dev/null || true
            sleep 2
            kill -KILL "$pid" 2>/dev/null || true
            rm -f "$dir/broker.pid"
            die "broker not ready after ${timeout}s"
        fi
        sleep 0.1
    done
    t1="$(date +%s%N)"
    local ms=$(((t1 - t0) / 1000000))
    echo "kafka.sh: broker ready on 127.0.0.1:$port (controller $cport, pid $pid) in $((ms / 1000)).$(printf '%03d' $((ms % 1000)))s"
}

cmd_stop() { daemon_cmd_stop kafka.sh broker broker.pid "${KAFKA_STOP_TIMEOUT:-30}" "$@"; }

cmd_status() { daemon_cmd_status "$@"; }

[[ $# -ge 1 ]] || usage
sub="$1"; shift
case "$sub" in
    fetch) cmd_fetch "$@" ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status "$@" ;;
    -h|--help|help) usage ;;
    *) usage ;;
esac
