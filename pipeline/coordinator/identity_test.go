package coordinator

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"blipflow/pipeline"
	"blipflow/pipeline/jobstate"
	"blipflow/pipeline/natsembed"
	"blipflow/pipeline/node"
	"blipflow/pipeline/queue"
)

// newTestCoordinator starts an embedded NATS and returns a coordinator on it.
func newTestCoordinator(t *testing.T) *Coordinator {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	srv, err := natsembed.Start(natsembed.Config{StoreDir: filepath.Join(t.TempDir(), "nats")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	conn, err := node.Dial(ctx, srv.URL(), "identity-test", queue.Config{}, jobstate.Config{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.NC.Close)
	coord, err := New(Config{JS: conn.JS, Queue: conn.Queue, Jobs: conn.Jobs, OpenStore: openStore, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	return coord
}

// TestJobIdentity: spellings of the same folders are one job; another
// model, generation settings or prompt column is another job; the output
// names its latest job.
func TestJobIdentity(t *testing.T) {
	ctx := context.Background()
	coord := newTestCoordinator(t)
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.MkdirAll(filepath.Join("in", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"in/a.jpg", "in/sub/b.png"} {
		if err := os.WriteFile(name, []byte("not an image"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	base := Request{Input: "in", Output: "out", Task: pipeline.Task{Caption: true}, ShardSize: 8, Model: "fingerprint-a"}
	first, err := coord.Submit(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	for _, spelling := range [][2]string{{"in/", "out/"}, {"./in/", "./out/"}, {filepath.Join(dir, "in"), filepath.Join(dir, "out") + "/"}} {
		req := base
		req.Input, req.Output = spelling[0], spelling[1]
		spec, err := coord.Submit(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if spec.ID != first.ID {
			t.Errorf("input %q output %q: job %s, want the same job %s", spelling[0], spelling[1], spec.ID, first.ID)
		}
	}
	other := map[string]func(*Request){
		"model":         func(r *Request) { r.Model = "fingerprint-b" },
		"generation":    func(r *Request) { r.Task.Generation = `{"max_new_tokens":40}` },
		"prompt column": func(r *Request) { r.Task.PromptColumn = "question" },
	}
	for what, change := range other {
		req := base
		change(&req)
		if JobID(req) == JobID(base) {
			t.Errorf("another %s gives the same job id", what)
		}
	}
	req := base
	req.Model = "fingerprint-b"
	second, err := coord.Submit(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if second.ID == first.ID || second.Model != "fingerprint-b" {
		t.Fatalf("another model resumed job %s (spec %+v)", first.ID, second)
	}
	out, err := openStore(ctx, "out")
	if err != nil {
		t.Fatal(err)
	}
	if latest, err := Latest(ctx, out); err != nil || latest != second.ID {
		t.Fatalf("latest = %q, %v; want %s", latest, err, second.ID)
	}
}

func TestSubmitEmptyInput(t *testing.T) {
	coord := newTestCoordinator(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	if err := os.Mkdir(in, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(in, "notes.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := coord.Submit(context.Background(), Request{Input: in, Output: filepath.Join(dir, "out"), Task: pipeline.Task{Caption: true}, ShardSize: 8})
	if !errors.Is(err, ErrNoImages) {
		t.Fatalf("error %v, want %v", err, ErrNoImages)
	}
}
