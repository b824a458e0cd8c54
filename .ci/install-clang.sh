#!/bin/sh
# install-clang.sh installs clang (14 on Debian 12) so the CUDA kernel
# sources of model/cuda/kernels can be compiled to PTX in CI without a CUDA
# installation (clang -x cuda --cuda-device-only -nocudainc -nocudalib).
# It is idempotent: when a clang is already on PATH it does nothing. Run it
# as root.
set -eu

for c in clang clang-19 clang-18 clang-17 clang-16 clang-15 clang-14; do
	if command -v "$c" >/dev/null 2>&1; then
		echo "install-clang: $c already installed"
		exit 0
	fi
done

if [ "$(id -u)" -ne 0 ]; then
	echo "install-clang: must run as root to install clang-14" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends clang-14 >/dev/null
command -v clang-14 >/dev/null
echo "install-clang: installed $(clang-14 --version | head -n 1)"
