#!/usr/bin/env bash
# Installs the Debian packages the test suite runs against, when they are missing:
#   mosquitto (broker), victoria-metrics (InfluxDB v2 write API), influxdb (1.x: InfluxQL for the boards),
#   chromium (browser tests of the live page), openssl (test certificates).
# One apt-get update, only when something is missing. Needs root; otherwise says what to install.
set -euo pipefail
need=()
command -v mosquitto >/dev/null 2>&1 || [[ -x /usr/sbin/mosquitto ]] || need+=(mosquitto)
command -v victoria-metrics >/dev/null 2>&1 || need+=(victoria-metrics)
command -v influxd >/dev/null 2>&1 || need+=(influxdb)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v chromium >/dev/null 2>&1 || need+=(chromium)   # the live page's browser tests (headless)
command -v openssl >/dev/null 2>&1 || need+=(openssl)     # test certificates for the TLS listener
[[ -d /usr/share/fonts/opentype/noto ]] || need+=(fonts-noto-cjk)  # Chinese text in page screenshots
if ((${#need[@]} == 0)); then
    exit 0
fi
if [[ "$(id -u)" != 0 ]]; then
    echo "system packages missing: ${need[*]} (run as root, or: sudo apt-get install -y ${need[*]})" >&2
    exit 0  # the tests that need them fail under CI=true and are skipped with a reason elsewhere
fi
echo "installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian's packages may start daemons on default ports: the tests start their own on free ports.
for unit in victoria-metrics influxdb; do
    if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
        systemctl disable --now "$unit" >/dev/null 2>&1 || true
    fi
done
