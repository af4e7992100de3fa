#!/bin/sh
# Makes sure the programs the integration tests start exist: Debian's mosquitto, influxdb and
# victoria-metrics (the stand-in for InfluxDB 2.x/3.x's /api/v2/write), and PostgreSQL's
# binaries (the work-order tests use the machine's server on 127.0.0.1:5432, or start one),
# openssl (device certificates), and Chromium for the dashboard's browser test (Playwright
# drives /usr/bin/chromium; it never downloads a browser of its own) with a CJK font so its
# Chinese screenshots are legible; nginx and systemd-analyze (the deployment kit's site and
# units in deploy/ are checked with them).
# Installs them with apt-get when missing and running as root; otherwise names what to install.
set -eu

missing=""
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing="$missing mosquitto"
command -v influxd >/dev/null 2>&1 || [ -x /usr/bin/influxd ] || missing="$missing influxdb"
command -v victoria-metrics >/dev/null 2>&1 || [ -x /usr/bin/victoria-metrics ] || missing="$missing victoria-metrics"
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing="$missing postgresql"
[ -x /usr/bin/chromium ] || missing="$missing chromium"
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"  # `facility devices certs`
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing="$missing fonts-wqy-microhei"
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$missing nginx"
command -v systemd-analyze >/dev/null 2>&1 || missing="$missing systemd"

if [ -z "$missing" ]; then
    exit 0
fi

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "ensure-services: installing Debian packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # Packages with a daemon (nginx) would start it on its default port: the tests start their
    # own. Debian's policy-rc.d says no to that while installing (if the machine has none).
    guard=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        guard=1
    fi
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing || status=$?
    [ -z "$guard" ] || rm -f /usr/sbin/policy-rc.d
    exit "${status:-0}"
fi

echo "ensure-services: the integration tests need these Debian packages:$missing" >&2
echo "ensure-services: install them with:  sudo apt-get install$missing" >&2
if [ "${FACILITY_REQUIRE_SERVICES:-0}" = "1" ]; then
    exit 1
fi
echo "ensure-services: continuing; the integration tests will be skipped" >&2
