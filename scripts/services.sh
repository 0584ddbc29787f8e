#!/usr/bin/env bash
# Time-series services for Floorwatch tests and local runs.
#
#   scripts/services.sh install                 install victoria-metrics and influxdb (1.x) with apt-get
#                                               when running as root and a binary is missing
#   scripts/services.sh start victoria-metrics  start one on a free 127.0.0.1 port, data in a temp dir
#   scripts/services.sh start influxdb          InfluxDB 1.x: reporting-disabled, 127.0.0.1, temp data
#   scripts/services.sh stop NAME               stop what `start NAME` started (by its recorded pid)
#   scripts/services.sh status                  what runs, with its URL
#
# `start` prints `NAME_URL=http://127.0.0.1:PORT` (eval-able). State lives in $FLOORWATCH_SERVICES_DIR
# (default: ${TMPDIR:-/tmp}/floorwatch-services). The pytest fixtures start their own private servers,
# so the tests need only `install`; start/stop are for running things by hand.
set -euo pipefail

STATE_DIR="${FLOORWATCH_SERVICES_DIR:-${TMPDIR:-/tmp}/floorwatch-services}"

log() { printf '%s\n' "$*" >&2; }

free_port() {
    python3 - <<'PY'
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

wait_http() {  # url, expected status codes regex, seconds
    local url="$1" codes="$2" secs="${3:-30}" i code
    for ((i = 0; i < secs * 10; i++)); do
        code="$(curl -s -o /dev/null -w '%{http_code}' "$url" 2>/dev/null || true)"
        if [[ "$code" =~ ^($codes)$ ]]; then return 0; fi
        sleep 0.1
    done
    return 1
}

cmd_install() {
    local missing=()
    command -v victoria-metrics >/dev/null 2>&1 || missing+=(victoria-metrics)
    command -v influxd >/dev/null 2>&1 || missing+=(influxdb)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    if ((${#missing[@]} == 0)); then
        log "services: victoria-metrics and influxd already installed"
        return 0
    fi
    if [[ "$(id -u)" != 0 ]]; then
        log "services: missing ${missing[*]}; run as root or: sudo apt-get install -y ${missing[*]}"
        return 1
    fi
    log "services: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Debian's packages try to start their systemd units; without systemd that fails harmlessly.
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
    # Do not leave package-started daemons on the default ports.
    if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
        systemctl disable --now victoria-metrics influxdb >/dev/null 2>&1 || true
    fi
}

start_victoria_metrics() {
    local dir="$1" port="$2"
    victoria-metrics -httpListenAddr="127.0.0.1:$port" -storageDataPath="$dir/data" \
        -retentionPeriod=100y -search.latencyOffset=0s -loggerLevel=ERROR >"$dir/log" 2>&1 &
    echo $! >"$dir/pid"
    wait_http "http://127.0.0.1:$port/health" 200 30
}

start_influxdb() {
    local dir="$1" port="$2" rpc
    rpc="$(free_port)"
    cat >"$dir/influxdb.conf" <<CONF
reporting-disabled = true
bind-address = "127.0.0.1:$rpc"

[meta]
  dir = "$dir/meta"

[data]
  dir = "$dir/data"
  wal-dir = "$dir/wal"
  query-log-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:$port"
  log-enabled = false

[monitor]
  store-enabled = false

[continuous_queries]
  enabled = false
CONF
    influxd -config "$dir/influxdb.conf" >"$dir/log" 2>&1 &
    echo $! >"$dir/pid"
    wait_http "http://127.0.0.1:$port/ping" 204 30
}

cmd_start() {
    local name="${1:?start what: victoria-metrics or influxdb}" dir port var
    dir="$STATE_DIR/$name"
    if [[ -f "$dir/pid" ]] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
        log "services: $name already running"
        cat "$dir/env"
        return 0
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    port="$(free_port)"
    case "$name" in
        victoria-metrics) command -v victoria-metrics >/dev/null || { log "victoria-metrics not installed; run: $0 install"; return 1; }
                          start_victoria_metrics "$dir" "$port"; var=VICTORIA_METRICS_URL ;;
        influxdb|influxd) command -v influxd >/dev/null || { log "influxd not installed; run: $0 install"; return 1; }
                          start_influxdb "$dir" "$port"; var=INFLUXDB_URL ;;
        *) log "unknown service: $name"; return 2 ;;
    esac || { log "services: $name did not start; log:"; tail -n 20 "$dir/log" >&2; cmd_stop "$name"; return 1; }
    echo "$var=http://127.0.0.1:$port" | tee "$dir/env"
}

cmd_stop() {
    local name="${1:?stop what}" dir pid i
    [[ "$name" == influxd ]] && name=influxdb
    dir="$STATE_DIR/$name"
    [[ -f "$dir/pid" ]] || { log "services: $name not started by this script"; return 0; }
    pid="$(cat "$dir/pid")"
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
    rm -rf "$dir"
    log "services: $name stopped"
}

cmd_status() {
    local d
    for d in "$STATE_DIR"/*/; do
        [[ -f "$d/pid" ]] || continue
        if kill -0 "$(cat "$d/pid")" 2>/dev/null; then echo "$(basename "$d") running: $(cat "$d/env" 2>/dev/null)"
        else echo "$(basename "$d") dead"; fi
    done
}

main() {
    local cmd="${1:-}"
    shift || true
    case "$cmd" in
        install) cmd_install ;;
        start) cmd_start "$@" ;;
        stop) cmd_stop "$@" ;;
        status) cmd_status ;;
        *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; [[ -z "$cmd" ]] && return 0 || return 2 ;;
    esac
}

main "$@"
