// Package integration runs the pipeline as it is deployed: a NATS server
// (in the test process, so tests can stop and restart it), an S3 server
// (versitygw through s3test), and coordinator and worker binaries built in
// TestMain, on a few hundred generated images. Skipped with -short.
package integration

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// binaries holds the paths of the coordinator and worker built by TestMain.
var binaries struct {
	coordinator, worker string
}

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "blipflow-integration-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binaries.coordinator = filepath.Join(dir, "coordinator")
	binaries.worker = filepath.Join(dir, "worker")
	for pkg, out := range map[string]string{"blipflow/cmd/coordinator": binaries.coordinator, "blipflow/cmd/worker": binaries.worker} {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "integration: go build %s: %v\n", pkg, err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
