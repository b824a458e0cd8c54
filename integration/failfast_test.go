package integration

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"blipflow/pipeline/jobstate"
)

// TestImpossibleTaskFailsFast submits jobs that can never succeed: with
// --local the coordinator refuses them before publishing anything; on a
// cluster the worker dead-letters the shard on its first delivery as a
// permanent failure, the job records why, and the coordinator exits with
// that reason instead of retrying for minutes.
func TestImpossibleTaskFailsFast(t *testing.T) {
	e := newEnv(t, 10, false)
	itm, err := filepath.Abs("../testdata/blip2/itm-tiny/model")
	if err != nil {
		t.Fatal(err)
	}
	opt, err := filepath.Abs("../testdata/blip2/opt-tiny/model")
	if err != nil {
		t.Fatal(err)
	}

	// Local mode: checked against the loaded model before publishing.
	for name, args := range map[string][]string{
		"caption with a retrieval checkpoint": {"--model", itm, "--task", "caption"},
		"prompt longer than the positions":    {"--model", opt, "--task", "caption", "--prompt", strings.Repeat("very ", 3000)},
	} {
		out := t.TempDir()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		start := time.Now()
		got, err := exec.CommandContext(ctx, binaries.coordinator, append([]string{"run", "--local", "--input", "../testdata/blip2/images",
			"--output", out, "--metrics-addr", "", "--progress=false"}, args...)...).CombinedOutput()
		cancel()
		t.Logf("local, %s: exit after %s", name, time.Since(start).Round(10*time.Millisecond))
		if err == nil || !strings.Contains(string(got), "cannot run task caption") || strings.Contains(string(got), "shards published") {
			t.Errorf("local, %s: %v; want a refusal before publishing:\n%s", name, err, got)
		}
	}

	// A cluster: the worker has the model, the coordinator does not.
	e.start("worker", binaries.worker, "run", "--model", itm, "--retry-delay", "2s", "--name", "itm-worker")
	start := time.Now()
	coord := e.start("coordinator", binaries.coordinator, "run", "--input", e.input, "--output", e.output,
		"--task", "caption", "--job", "impossible", "--progress=false", "--max-deliver", "5")
	err = coord.wait(t, 2*time.Minute)
	took := time.Since(start)
	t.Logf("cluster: coordinator exited after %s: %v", took.Round(10*time.Millisecond), err)
	if testing.Verbose() {
		t.Logf("coordinator output:\n%s", coord.output())
	}
	if err == nil || !strings.Contains(coord.output(), "no language model") {
		t.Errorf("coordinator: %v; want an exit naming the missing language model", err)
	}
	if took > 60*time.Second {
		t.Errorf("the impossible job took %s to fail", took)
	}
	c := e.conn()
	spec, err := c.Jobs.Spec(e.ctx, "impossible")
	if err != nil || !strings.Contains(spec.Failure, "no language model") {
		t.Errorf("job failure %q (%v)", spec.Failure, err)
	}
	states, err := c.Jobs.Shards(e.ctx, "impossible")
	if err != nil {
		t.Fatal(err)
	}
	for id, st := range states {
		if st.State == jobstate.StateFailed && (st.Deliveries != 1 || !strings.HasPrefix(st.Reason, "permanent:")) {
			t.Errorf("shard %s: %+v; want a permanent failure on the first delivery", id, st)
		}
	}
}
