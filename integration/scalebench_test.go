package integration

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestScaleBench runs `coordinator scale-bench` on a small synthetic
// listing: NATS, the coordinator and the workers in their own processes
// finish the job (the command checks every image has a row) and it
// prints one row of measurements.
func TestScaleBench(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, binaries.coordinator, "scale-bench", "--images", "3000",
		"--shard-size", "100", "--workers", "1").CombinedOutput()
	if err != nil {
		t.Fatalf("scale-bench: %v\n%s", err, out)
	}
	var row []string
	for _, line := range strings.Split(string(out), "\n") {
		if fields := strings.Fields(line); len(fields) == 16 && fields[0] == "3000" {
			row = fields
		}
	}
	if row == nil || row[1] != "30" || !strings.HasSuffix(row[13], "ms") {
		t.Fatalf("no measurement row for 3000 images in 30 shards:\n%s", out)
	}
}
