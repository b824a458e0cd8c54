#!/bin/sh
# test-helm.sh checks the Kubernetes deployment without a cluster or a helm
# binary: the Go module in deploy/helm/charttest lints and renders the chart
# deploy/helm/blipflow with the Helm library (default values and every
# scenario under charttest/testdata), decodes each manifest strictly into
# its Kubernetes API type, checks the deployment essentials, and checks
# deploy/docker/Dockerfile against the build steps CI runs. The first run
# downloads Helm and the Kubernetes libraries from the Go module proxy.
set -eu

cd "$(dirname "$0")/../deploy/helm/charttest"
go vet ./...
go test -count=1 ./...
