package integration

import (
	"context"
	"testing"
	"time"

	"blipflow/internal/fixtures"
	"blipflow/model/engine"
	"blipflow/model/generate"
	"blipflow/pipeline/blip2model"
)

// TestTinyCheckpointCaptions runs the pipeline with the real tiny OPT
// checkpoint in two worker processes: every image comes out exactly once,
// with the caption the model gives it alone (batching across images and
// shards changes nothing).
func TestTinyCheckpointCaptions(t *testing.T) {
	e := newEnv(t, 60, false)
	dir := fixtures.Path("opt-tiny", "model")
	expect, err := blip2model.Loader(engine.Options{DType: "fp32"}, generate.Config{})(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer expect.(*blip2model.Model).Close()
	e.expect = expect
	for _, name := range []string{"worker-1", "worker-2"} {
		e.start(name, binaries.worker, "run", "--model", dir, "--dtype", "fp32", "--batch-size", "5", "--concurrency", "2",
			"--retry-delay", retryDelay, "--drain-timeout", "20s", "--name", name)
	}
	coord := e.startCoordinator("coordinator", "tiny")
	if err := coord.wait(t, 3*time.Minute); err != nil {
		t.Fatalf("coordinator: %v\n%s", err, coord.output())
	}
	m := e.verify("tiny", nil)
	if m.Done != m.Shards {
		t.Errorf("manifest: %d of %d shards done", m.Done, m.Shards)
	}
}
