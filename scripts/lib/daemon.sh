# shellcheck shell=bash
# Sourced by scripts/kafka.sh and scripts/otelcol.sh: a local server run in the background
# from a folder D, its pid in a file in D, found again by its command line, stopped with
# SIGTERM (SIGKILL after a timeout) and asked for its status.
#
# The sourcing script defines:
#   usage                 print the script's usage and exit 2
#   running_pid DIR       the server's pid if it runs from DIR, else nothing (daemon_pid does it)
#   endpoint DIR          "HOST PORT LABEL": where it answers, and how `status` names it
#
#   daemon_cmd_stop TAG WHAT PIDFILE DEFAULT_TIMEOUT [--dir D] [--timeout S]   (the `stop` command)
#   daemon_cmd_status [--dir D]     (the `status` command: exit 0 running, 3 stopped, 4 not answering yet)

# port_open HOST PORT: something accepts TCP connections there.
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# daemon_pid PIDFILE PATTERN: the pid in PIDFILE if that process runs and its command line
# contains PATTERN, else nothing (and a stale PIDFILE is removed).
daemon_pid() {
    local file="$1" pattern="$2" pid
    [[ -f "$file" ]] || return 0
    pid="$(cat "$file" 2>/dev/null || true)"
    if [[ "$pid" =~ ^[0-9]+$ ]] && [[ -r "/proc/$pid/cmdline" ]] \
        && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$pattern"; then
        echo "$pid"
    else
        rm -f "$file"
    fi
}

# daemon_args OPTION ARGS...: DAEMON_DIR from `--dir D` (required), and DAEMON_TIMEOUT
# from `--timeout S` where OPTION is --timeout; anything else is the script's usage.
daemon_args() {
    local option="$1"
    shift
    DAEMON_DIR=""
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --dir) DAEMON_DIR="$2"; shift 2 ;;
            "$option") DAEMON_TIMEOUT="$2"; shift 2 ;;
            *) usage ;;
        esac
    done
    [[ -n "$DAEMON_DIR" ]] || usage
}

# daemon_cmd_stop TAG WHAT PIDFILE DEFAULT_TIMEOUT ARGS...: `stop --dir D [--timeout S]`;
# TAG and WHAT name the script and the server in its messages ("kafka.sh" "broker").
daemon_cmd_stop() {
    local tag="$1" what="$2" pidfile="$3"
    DAEMON_TIMEOUT="$4"
    shift 4
    daemon_args --timeout "$@"
    local dir="$DAEMON_DIR" timeout="$DAEMON_TIMEOUT"
    [[ -d "$dir" ]] || { echo "$tag: no such dir $dir (not running)"; return 0; }
    dir="$(cd "$dir" && pwd)"
    local pid
    pid="$(running_pid "$dir")"
    if [[ -z "$pid" ]]; then
        echo "$tag: $what not running ($dir)"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + timeout))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            echo "$tag: $what pid $pid did not stop in ${timeout}s, sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
            break
        fi
        sleep 0.1
    done
    rm -f "$dir/$pidfile"
    echo "$tag: $what stopped (pid $pid)"
}

# daemon_cmd_status ARGS...: `status --dir D`; prints "stopped" (exit 3), "running pid=P
# LABEL" (exit 0) or "starting pid=P LABEL (not answering yet)" (exit 4).
daemon_cmd_status() {
    daemon_args "" "$@"
    local dir="$DAEMON_DIR"
    [[ -d "$dir" ]] || { echo "stopped"; return 3; }
    dir="$(cd "$dir" && pwd)"
    local pid host port label
    pid="$(running_pid "$dir")"
    [[ -n "$pid" ]] || { echo "stopped"; return 3; }
    read -r host port label <<<"$(endpoint "$dir")"
    if port_open "$host" "$port"; then
        echo "running pid=$pid $label"
    else
        echo "starting pid=$pid $label (not answering yet)"
        return 4
    fi
}
