#!/usr/bin/env bash
# Installs the browser the console's tests drive: Debian's Chromium and its
# WebDriver (chromedriver), when they are missing. Idempotent and unattended.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "browser: the console's tests need chromium and chromedriver (Debian: apt-get install chromium chromium-driver); install them, or run this as root on Debian" >&2
    exit 1
fi
echo "browser: installing chromium and chromium-driver from Debian" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
command -v chromium >/dev/null && command -v chromedriver >/dev/null
