#!/usr/bin/env bash
# Installs the Debian packages the end-to-end suite uses, once: Chromium for the browser test
# (Playwright drives /usr/bin/chromium and never downloads a browser of its own) and
# docker-compose, which validates docker-compose.yml without a Docker engine.
set -euo pipefail

missing=()
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
command -v docker-compose >/dev/null || missing+=(docker-compose)
if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    SUDO=sudo
else
    SUDO=
fi
echo "installing Debian packages for the end-to-end tests: ${missing[*]}"
${SUDO} apt-get update -qq
${SUDO} env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
