#!/bin/sh
# Find a Chromium for the browser tests: Debian's /usr/bin/chromium if present; else install it with
# apt when running as root on Debian; else fall back to Playwright's own download (what a normal user gets).
set -e
PY=${PY:-.venv/bin/python}
if [ -n "${CONVLENS_CHROMIUM:-}" ] && [ -x "${CONVLENS_CHROMIUM}" ]; then
    echo "browser: ${CONVLENS_CHROMIUM}"; exit 0
fi
if [ -x /usr/bin/chromium ]; then
    echo "browser: /usr/bin/chromium"; exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "browser: installing Debian's chromium with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    [ -x /usr/bin/chromium ] && { echo "browser: /usr/bin/chromium"; exit 0; }
fi
echo "browser: falling back to 'python -m playwright install chromium'"
"$PY" -m playwright install chromium
