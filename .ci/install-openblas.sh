#!/bin/sh
# install-openblas.sh installs the OpenBLAS shared library (pthread build) on a
# Debian 12 machine so that model/blas can load it at run time with purego.
# It is idempotent: when libopenblas.so.0 is already known to the dynamic
# loader it does nothing and exits 0. Run it as root.
set -eu

have_openblas() {
	ldconfig -p 2>/dev/null | grep -q 'libopenblas\.so\.0'
}

if have_openblas; then
	echo "install-openblas: OpenBLAS already installed"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "install-openblas: must run as root to install libopenblas0-pthread" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if ! apt-get install -y -qq --no-install-recommends libopenblas0-pthread >/dev/null; then
	apt-get install -y -qq --no-install-recommends libopenblas0 >/dev/null
fi

if ! have_openblas; then
	echo "install-openblas: libopenblas.so.0 still not found after install" >&2
	exit 1
fi
echo "install-openblas: installed $(dpkg-query -W -f='${Package} ${Version}' libopenblas0-pthread 2>/dev/null || echo libopenblas0)"
