package integration

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// images is the size of each test's dataset (plus corrupt files).
const images = 300

// TestTwoWorkersExactlyOnce runs a job with a coordinator and two worker
// processes and checks every image comes out once, corrupt and non-image
// files as error rows, and the metrics and health endpoints answer.
func TestTwoWorkersExactlyOnce(t *testing.T) {
	e := newEnv(t, images, false)
	w1 := e.startWorker("worker-1", 0)
	e.startWorker("worker-2", 0)
	coord := e.startCoordinator("coordinator", "plain")
	e.waitFor("worker readiness", 30*time.Second, func() bool { return getOK(w1.metrics, "/readyz") })
	if err := coord.wait(t, 2*time.Minute); err != nil {
		t.Fatalf("coordinator: %v", err)
	}
	m := e.verify("plain", nil)
	if m.Done != m.Shards || m.Shards != (images+len(e.corrupt)+19)/20 {
		t.Errorf("manifest: %d of %d shards done", m.Done, m.Shards)
	}
	if !getOK(w1.metrics, "/healthz") {
		t.Error("worker /healthz not ok")
	}
	if n := w1.metric("blipflow_worker_read_bytes_total"); n <= 0 {
		t.Errorf("worker read bytes metric = %v", n)
	}
	if !strings.Contains(coord.output(), `"shards published"`) {
		t.Error("coordinator log has no publish record")
	}

	// Running the same job again publishes nothing and rewrites nothing.
	again := e.startCoordinator("coordinator-again", "plain")
	if err := again.wait(t, time.Minute); err != nil {
		t.Fatalf("second coordinator: %v", err)
	}
	if !strings.Contains(again.output(), "job already published") {
		t.Error("second run of the same job was not recognised as published")
	}
	e.verify("plain", nil)
}

// TestWorkerKilledMidShard kills one worker with SIGKILL while it holds
// shards and stops another with SIGTERM; the shards are redelivered and
// every image still comes out once.
func TestWorkerKilledMidShard(t *testing.T) {
	e := newEnv(t, images, false)
	c := e.conn()
	victim := e.startWorker("victim", 150*time.Millisecond)
	stopped := e.startWorker("stopped", 150*time.Millisecond)
	coord := e.startCoordinator("coordinator", "killed")
	e.waitFor("the victim to hold shards", time.Minute, func() bool {
		return victim.metric("blipflow_worker_inflight_shards") >= 1 && e.doneShards(c, "killed") >= 1
	})
	victim.signal(syscall.SIGKILL)
	survivor := e.startWorker("survivor", 0)
	_ = survivor
	stopped.signal(syscall.SIGTERM)
	if err := stopped.wait(t, 40*time.Second); err != nil {
		t.Errorf("SIGTERM: worker exited with %v", err)
	}
	if !strings.Contains(stopped.output(), "worker stopped") {
		t.Error("SIGTERM: worker did not stop cleanly")
	}
	if err := coord.wait(t, 2*time.Minute); err != nil {
		t.Fatalf("coordinator: %v", err)
	}
	e.verify("killed", nil)
	if n := e.redelivered(c, "killed"); n == 0 {
		t.Error("no shard was redelivered: the kill did not hit a shard in flight")
	}
}

// TestCoordinatorRestart kills the coordinator mid-job; a new one resumes
// the job (nothing re-published, nothing duplicated) and writes the
// manifest.
func TestCoordinatorRestart(t *testing.T) {
	e := newEnv(t, images, false)
	c := e.conn()
	e.startWorker("worker-1", 100*time.Millisecond)
	e.startWorker("worker-2", 100*time.Millisecond)
	first := e.startCoordinator("coordinator-1", "restarted")
	e.waitFor("some shards done", time.Minute, func() bool { return e.doneShards(c, "restarted") >= 2 })
	first.signal(syscall.SIGKILL)
	_ = first.wait(t, 10*time.Second)
	second := e.startCoordinator("coordinator-2", "restarted")
	if err := second.wait(t, 2*time.Minute); err != nil {
		t.Fatalf("restarted coordinator: %v", err)
	}
	if !strings.Contains(second.output(), "job already published") {
		t.Error("restarted coordinator did not resume the published job")
	}
	e.verify("restarted", nil)
	status := e.start("status", binaries.coordinator, "status", "restarted")
	if err := status.wait(t, 30*time.Second); err != nil {
		t.Fatalf("coordinator status: %v", err)
	}
	if out := status.output(); !strings.Contains(out, "finished") || !strings.Contains(out, fmt.Sprintf("%d rows", images+len(e.corrupt))) {
		t.Errorf("coordinator status output:\n%s", out)
	}
}

// TestOutages stops S3 for a while and restarts NATS during a job: the
// workers retry and reconnect, and the job finishes with every image once.
func TestOutages(t *testing.T) {
	e := newEnv(t, images, false)
	c := e.conn()
	e.startWorker("worker-1", 60*time.Millisecond)
	e.startWorker("worker-2", 60*time.Millisecond)
	coord := e.startCoordinator("coordinator", "outages")
	e.waitFor("some shards done", time.Minute, func() bool { return e.doneShards(c, "outages") >= 1 })
	e.s3.Stop()
	time.Sleep(2 * time.Second)
	e.nats.stop()
	time.Sleep(2 * time.Second)
	e.nats.start()
	time.Sleep(2 * time.Second)
	e.s3.Restart()
	if err := coord.wait(t, 3*time.Minute); err != nil {
		t.Fatalf("coordinator: %v", err)
	}
	e.verify("outages", nil)
	for _, p := range e.procs {
		if !strings.Contains(p.output(), "nats reconnected") {
			t.Errorf("%s did not log a NATS reconnect", p.name)
		}
	}
}

// TestPoisonShard makes the model fail on one image: its shard is retried,
// then dead-lettered with the reason, the job finishes and says so.
func TestPoisonShard(t *testing.T) {
	e := newEnv(t, images, true)
	c := e.conn()
	e.startWorker("worker-1", 0)
	e.startWorker("worker-2", 0)
	coord := e.startCoordinator("coordinator", "poisoned")
	err := coord.wait(t, 2*time.Minute)
	if err == nil || !strings.Contains(coord.output(), "dead-lettered") {
		t.Fatalf("coordinator: exit %v; want a failure naming the dead-lettered shard", err)
	}
	letters, err := c.Queue.DeadLetters(context.Background(), "poisoned")
	if err != nil {
		t.Fatal(err)
	}
	if len(letters) != 1 || !strings.Contains(letters[0].Reason, "poisoned") || letters[0].Deliveries != 3 {
		t.Fatalf("dead letters %+v; want one poisoned shard after 3 deliveries", letters)
	}
	lost := map[string]bool{}
	for _, key := range letters[0].Task.Keys {
		lost[key] = true
	}
	for key := range e.poison {
		if !lost[key] {
			t.Errorf("poisoned key %s is not in the dead-lettered shard", key)
		}
	}
	m := e.verify("poisoned", lost)
	if m.Failed != 1 || m.Failures[0].Shard != letters[0].Shard || !strings.Contains(m.Failures[0].Reason, "poisoned") {
		t.Errorf("manifest failures %+v", m.Failures)
	}
}
