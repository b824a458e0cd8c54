#!/bin/sh
# install-versitygw.sh installs the versitygw S3 gateway (Apache-2.0), which the
# storage and pipeline tests start on a loopback port as a real S3-compatible
# server (see internal/s3test). It builds the pinned release from the Go module
# proxy into $(go env GOPATH)/bin. It is idempotent: when versitygw is already
# on PATH or in $(go env GOPATH)/bin it does nothing and exits 0.
set -eu

VERSITYGW_VERSION="${VERSITYGW_VERSION:-v1.8.0}"

gobin="$(go env GOBIN)"
if [ -z "$gobin" ]; then
	gobin="$(go env GOPATH | cut -d: -f1)/bin"
fi

if command -v versitygw >/dev/null 2>&1; then
	echo "install-versitygw: already on PATH at $(command -v versitygw)"
	exit 0
fi
if [ -x "$gobin/versitygw" ]; then
	echo "install-versitygw: already installed at $gobin/versitygw"
	exit 0
fi

echo "install-versitygw: building github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION (takes a few minutes)"
GOFLAGS= go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"

if [ ! -x "$gobin/versitygw" ]; then
	echo "install-versitygw: $gobin/versitygw missing after go install" >&2
	exit 1
fi
echo "install-versitygw: installed $gobin/versitygw"
