package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"blipflow/pipeline"
	"blipflow/pipeline/coordinator"
	"blipflow/pipeline/synth"
	"blipflow/pipeline/worker"
	"blipflow/schemas"
	"blipflow/storage"
)

// localJob is a dataset and an output in local folders, run with
// `coordinator run --local`.
type localJob struct {
	t       *testing.T
	ctx     context.Context
	dir     string
	in, out storage.Store
}

func newLocalJob(t *testing.T, images int) *localJob {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	dir := t.TempDir()
	j := &localJob{t: t, ctx: ctx, dir: dir}
	var err error
	if j.in, err = storage.Open(ctx, filepath.Join(dir, "in"), storage.Config{}); err != nil {
		t.Fatal(err)
	}
	if j.out, err = storage.Open(ctx, filepath.Join(dir, "out"), storage.Config{}); err != nil {
		t.Fatal(err)
	}
	if err := synth.Write(ctx, j.in, images, 32, 24); err != nil {
		t.Fatal(err)
	}
	return j
}

// write stores data under key in the input.
func (j *localJob) write(key string, data []byte) {
	j.t.Helper()
	if err := j.in.Write(j.ctx, key, data); err != nil {
		j.t.Fatal(err)
	}
}

// coordinator runs the coordinator binary with args (and the job's
// folders for run) and returns its output.
func (j *localJob) coordinator(args ...string) (string, error) {
	j.t.Helper()
	if args[0] == "run" {
		args = append(args, "--input", j.in.URL())
	}
	args = append(args, "--local", "--output", j.out.URL(), "--metrics-addr", "", "--log-format", "json")
	if args[0] != "report" {
		args = append(args, "--progress=false")
	}
	cmd := exec.CommandContext(j.ctx, binaries.coordinator, args...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// manifest reads the job's manifest.
func (j *localJob) manifest(job string) coordinator.Manifest {
	j.t.Helper()
	data, err := j.out.Read(j.ctx, coordinator.ManifestKey(job))
	if err != nil {
		j.t.Fatalf("manifest: %v", err)
	}
	var m coordinator.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		j.t.Fatalf("manifest: %v", err)
	}
	return m
}

// rows reads every file the manifest lists, by key.
func (j *localJob) rows(m coordinator.Manifest) map[string][]schemas.Row {
	j.t.Helper()
	rows := map[string][]schemas.Row{}
	for _, f := range m.Files {
		data, err := j.out.Read(j.ctx, f.Path)
		if err != nil {
			j.t.Fatal(err)
		}
		_, got, err := schemas.ReadRows(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			j.t.Fatalf("%s: %v", f.Path, err)
		}
		for _, r := range got {
			rows[r.Key] = append(rows[r.Key], r)
		}
	}
	return rows
}

// nopCaption is the caption the nop model gives the image at key now.
func (j *localJob) nopCaption(key string) string {
	j.t.Helper()
	model := &pipeline.NopModel{}
	prep, err := model.Preprocessor()
	if err != nil {
		j.t.Fatal(err)
	}
	src, err := j.in.Read(j.ctx, key)
	if err != nil {
		j.t.Fatal(err)
	}
	img, err := prep.DecodeBytes(key, src)
	if err != nil {
		j.t.Fatalf("%s: %v", key, err)
	}
	pixels, err := prep.Preprocess(img)
	if err != nil {
		j.t.Fatal(err)
	}
	return pipeline.NopCaption("", pipeline.Image{Key: key, Pixels: pixels})
}

// TestRetryLocal runs a job (--local) whose model fails on one image (its
// shard is dead-lettered) and with truncated files (error rows), fixes the
// files and retries with a model that does not fail: every image is then
// in the manifest's files exactly once, with its caption.
func TestRetryLocal(t *testing.T) {
	j := newLocalJob(t, 40)
	good := mustPNG(t)
	broken := []string{"img/000/broken.png", "img/003/broken.png"}
	for _, key := range broken {
		j.write(key, good[:40])
	}
	j.write("img/009/"+poisonMark+".png", good)
	out, err := j.coordinator("run", "--job", "retried", "--model", "nop:failbatch="+poisonMark, "--shard-size", "10", "--max-deliver", "1")
	if err == nil || !strings.Contains(out, "dead-lettered") {
		t.Fatalf("first run: %v; want a dead-lettered shard:\n%s", err, out)
	}
	first := j.manifest("retried")
	if first.Failed != 1 || first.ErrorRows != len(broken) {
		t.Fatalf("first run: %d failed shards, %d error rows", first.Failed, first.ErrorRows)
	}
	for _, key := range broken {
		j.write(key, good)
	}
	out, err = j.coordinator("retry", "retried", "--model", "nop")
	if err != nil {
		t.Fatalf("retry: %v\n%s", err, out)
	}
	lost := first.Images - first.Rows
	if want := fmt.Sprintf("retry round 1 re-ran %d images: %d fixed, 0 still failing", len(broken)+lost, len(broken)+lost); !strings.Contains(out, want) {
		t.Errorf("retry output lacks %q:\n%s", want, out)
	}
	m := j.manifest("retried")
	if m.Failed != 0 || m.ErrorRows != 0 || m.Rows != first.Images || len(m.Retries) != 1 || !m.Retries[0].Finished {
		t.Errorf("manifest after retry: %d failed shards, %d rows (%d errors) of %d images, retries %+v",
			m.Failed, m.Rows, m.ErrorRows, first.Images, m.Retries)
	}
	rows := j.rows(m)
	err = j.in.List(j.ctx, "", func(obj storage.Object) error {
		got := rows[obj.Key]
		if len(got) != 1 || got[0].Error != "" || len(got[0].Captions) != 1 || got[0].Captions[0] != j.nopCaption(obj.Key) {
			t.Errorf("%s: rows %+v; want one with its caption", obj.Key, got)
		}
		delete(rows, obj.Key)
		return nil
	})
	if err != nil || len(rows) != 0 {
		t.Errorf("rows without an input image: %v (%v)", rows, err)
	}
	out, err = j.coordinator("retry", "retried", "--model", "nop")
	if err != nil || !strings.Contains(out, "nothing to retry") {
		t.Errorf("second retry: %v\n%s", err, out)
	}
}

// TestRetryDistributed runs a job on worker processes whose model fails on
// one image, with corrupt files; the files are fixed, the failing workers
// replaced by ones that do not fail, and `coordinator retry` re-runs the
// failures: every image comes out once, without error.
func TestRetryDistributed(t *testing.T) {
	e := newEnv(t, 60, true)
	w1 := e.startWorker("worker-1", 0)
	w2 := e.startWorker("worker-2", 0)
	coord := e.startCoordinator("coordinator", "distributed")
	if err := coord.wait(t, time.Minute); err == nil {
		t.Fatal("first run: no failure for the poisoned shard")
	}
	w1.signal(syscall.SIGTERM)
	w2.signal(syscall.SIGTERM)
	_, _ = w1.wait(t, 30*time.Second), w2.wait(t, 30*time.Second)
	for key := range e.corrupt {
		if err := e.in.Write(e.ctx, key, mustPNG(t)); err != nil {
			t.Fatal(err)
		}
	}
	e.start("worker-fixed", binaries.worker, "run", "--model", "nop", "--batch-size", "8", "--retry-delay", retryDelay, "--name", "worker-fixed")
	retry := e.start("retry", binaries.coordinator, "retry", "distributed", "--progress=false")
	if err := retry.wait(t, time.Minute); err != nil {
		t.Fatalf("retry: %v", err)
	}
	// Nothing is lost or corrupt any more.
	for key := range e.poison {
		e.images = append(e.images, key)
	}
	e.corrupt, e.poison = map[string]bool{}, map[string]bool{}
	m := e.verify("distributed", nil)
	if len(m.Retries) != 1 || m.Retries[0].Failing != 0 || m.Retries[0].Fixed != m.Retries[0].Images {
		t.Errorf("manifest retries %+v", m.Retries)
	}
}

// TestDedup runs a job with --dedup on a dataset with copies (each content
// is processed once, the copies are duplicate rows naming it), then a job
// on new images and copies of the first job's, against the first job's
// table (--dedup-table): the copies are duplicates naming that table.
func TestDedup(t *testing.T) {
	j := newLocalJob(t, 20)
	copies := map[string]string{} // copy -> original
	for i, dst := range []string{"copies/a.png", "copies/b.png", "copies/c.png", "more/d.png"} {
		src := synth.Key(i % 2)
		data, err := j.in.Read(j.ctx, src)
		if err != nil {
			t.Fatal(err)
		}
		j.write(dst, data)
		copies[dst] = src
	}
	if out, err := j.coordinator("run", "--job", "deduped", "--model", "nop", "--shard-size", "8", "--dedup", "--workers", "2"); err != nil {
		t.Fatalf("run --dedup: %v\n%s", err, out)
	}
	m := j.manifest("deduped")
	rows := j.rows(m)
	processed := map[string]string{} // sha256 -> key
	dups := 0
	for key, got := range rows {
		if len(got) != 1 || got[0].Error != "" {
			t.Fatalf("%s: rows %+v", key, got)
		}
		r := got[0]
		if of := r.Extra[worker.ExtraDuplicateOf]; of != "" {
			dups++
			if len(r.Captions) != 0 || rows[of][0].SHA256 != r.SHA256 || rows[of][0].Extra[worker.ExtraDuplicateOf] != "" {
				t.Errorf("%s: duplicate row %+v does not name a processed copy", key, r)
			}
			continue
		}
		if other, ok := processed[r.SHA256]; ok {
			t.Errorf("content processed twice: %s and %s", key, other)
		}
		processed[r.SHA256] = key
	}
	if len(rows) != 24 || len(processed) != 20 || dups != len(copies) || m.Duplicates != len(copies) {
		t.Errorf("%d rows, %d contents processed, %d duplicates (manifest %d); want 24, 20, %d", len(rows), len(processed), dups, m.Duplicates, len(copies))
	}

	// A second job against the first job's first table.
	table := m.Files[0]
	earlier := j.rows(coordinator.Manifest{Files: []coordinator.ManifestFile{table}})
	next := newLocalJob(t, 0)
	copied := 0
	for key, got := range earlier {
		if got[0].Extra[worker.ExtraDuplicateOf] != "" {
			continue
		}
		data, err := j.in.Read(j.ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		next.write("again/"+key, data)
		copied++
	}
	fresh, err := synth.PNG(777, 32, 24)
	if err != nil {
		t.Fatal(err)
	}
	next.write("fresh.png", fresh)
	tablePath := filepath.Join(j.out.URL(), filepath.FromSlash(table.Path))
	if out, err := next.coordinator("run", "--job", "against-table", "--model", "nop", "--dedup-table", tablePath); err != nil {
		t.Fatalf("run --dedup-table: %v\n%s", err, out)
	}
	m2 := next.manifest("against-table")
	for key, got := range next.rows(m2) {
		r := got[0]
		switch {
		case key == "fresh.png":
			if r.Extra[worker.ExtraDuplicateOf] != "" || len(r.Captions) != 1 {
				t.Errorf("new image %s: %+v", key, r)
			}
		case r.Extra[worker.ExtraDuplicateOf] != strings.TrimPrefix(key, "again/") || r.Extra[worker.ExtraDuplicateTable] != tablePath:
			t.Errorf("%s: extra %v; want a duplicate of %s in %s", key, r.Extra, strings.TrimPrefix(key, "again/"), tablePath)
		}
	}
	if m2.Duplicates != copied || m2.Rows != copied+1 {
		t.Errorf("second job: %d rows, %d duplicates; want %d and %d", m2.Rows, m2.Duplicates, copied+1, copied)
	}
}
