#!/bin/sh
# install-onednn.sh installs oneDNN 2.x (Debian's libdnnl2, libdnnl.so.2) on a
# Debian 12 machine so that model/bf16 can load it at run time with purego
# for bf16 matrix products. It is idempotent: when libdnnl.so.2 is already
# known to the dynamic loader it does nothing and exits 0. Run it as root.
set -eu

have_onednn() {
	ldconfig -p 2>/dev/null | grep -q 'libdnnl\.so\.2'
}

if have_onednn; then
	echo "install-onednn: oneDNN already installed"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "install-onednn: must run as root to install libdnnl2" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends libdnnl2 >/dev/null

if ! have_onednn; then
	echo "install-onednn: libdnnl.so.2 still not found after install" >&2
	exit 1
fi
echo "install-onednn: installed $(dpkg-query -W -f='${Package} ${Version}' libdnnl2)"
