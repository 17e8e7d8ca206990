#!/usr/bin/env bash
# Installs Debian's Chromium (and an emoji font) for the browser tests when it is missing.
# Playwright's own browser download is not used: Debian's package works offline from the package mirror.
set -euo pipefail
if [[ -x /usr/bin/chromium ]]; then
  exit 0
fi
if [[ $(id -u) -eq 0 ]]; then
  apt_get=(apt-get)
elif command -v sudo >/dev/null 2>&1; then
  apt_get=(sudo apt-get)
else
  echo "Chromium is missing and cannot be installed without root: apt-get install chromium" >&2
  exit 0  # the browser tests then skip locally (and fail in CI, where CI=true)
fi
echo "Installing Chromium for the browser tests…"
"${apt_get[@]}" update -qq
DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq chromium fonts-noto-color-emoji >/dev/null
