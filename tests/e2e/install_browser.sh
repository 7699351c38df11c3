#!/usr/bin/env bash
# Installs Debian's Chromium for the browser test (tests/e2e/test_close_browser.py), once.
# Playwright drives /usr/bin/chromium; it never downloads a browser of its own.
set -euo pipefail

if [[ -x /usr/bin/chromium ]]; then
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    SUDO=sudo
else
    SUDO=
fi
${SUDO} apt-get update
${SUDO} env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
