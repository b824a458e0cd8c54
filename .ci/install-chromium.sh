#!/bin/sh
# install-chromium.sh installs Debian's Chromium so that the report tests can
# open the generated HTML page in a real headless browser. It is idempotent:
# when a chromium binary is already on PATH it does nothing and exits 0. Run
# it as root.
set -eu

have_chromium() {
	command -v chromium >/dev/null 2>&1
}

if have_chromium; then
	echo "install-chromium: $(chromium --version 2>/dev/null || echo chromium) already installed"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "install-chromium: must run as root to install chromium" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null

if ! have_chromium; then
	echo "install-chromium: chromium still not found after install" >&2
	exit 1
fi
echo "install-chromium: installed $(chromium --version 2>/dev/null || echo chromium)"
