package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"blipflow/internal/s3test"
	"blipflow/pipeline"
	"blipflow/pipeline/coordinator"
	"blipflow/pipeline/jobstate"
	"blipflow/pipeline/natsembed"
	"blipflow/pipeline/node"
	"blipflow/pipeline/queue"
	"blipflow/pipeline/synth"
	"blipflow/schemas"
	"blipflow/storage"
)

// Settings shared by the tests' processes: short timeouts so redeliveries
// happen within seconds.
const (
	ackWait    = "2s"
	retryDelay = "200ms"
	poisonMark = "poison"
)

// env is one test's world: NATS, S3, a dataset and the processes.
type env struct {
	t       *testing.T
	ctx     context.Context
	nats    *natsServer
	s3      *s3test.Server
	input   string // s3:// location of the images
	output  string // s3:// location of the results
	in, out storage.Store
	images  []string // keys that must produce a row (valid and corrupt)
	corrupt map[string]bool
	poison  map[string]bool
	procs   []*proc
	// expect computes the caption each image should get alone; nil means
	// the nop model the workers run by default.
	expect pipeline.Model
	// natsURLs, when set, is the --nats list processes and the test use
	// instead of nats.url() (a cluster; see cluster_test.go).
	natsURLs string
}

// natsURL is the --nats value of the env's processes.
func (e *env) natsURL() string {
	if e.natsURLs != "" {
		return e.natsURLs
	}
	return e.nats.url()
}

// newEnv starts NATS and S3 and writes a dataset of n generated PNGs, a
// few corrupt and non-image files and, if poisoned, an image whose key
// makes the nop model fail.
func newEnv(t *testing.T, n int, poisoned bool) *env {
	if testing.Short() {
		t.Skip("integration test; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx, corrupt: map[string]bool{}, poison: map[string]bool{}}
	e.s3 = s3test.Start(t)
	e.nats = startNATS(t)
	e.input = "s3://" + e.s3.Bucket + "/in"
	e.output = "s3://" + e.s3.Bucket + "/out"
	var err error
	if e.in, err = storage.Open(ctx, e.input, storage.ConfigFromEnv()); err != nil {
		t.Fatal(err)
	}
	if e.out, err = storage.Open(ctx, e.output, storage.ConfigFromEnv()); err != nil {
		t.Fatal(err)
	}
	if err := synth.Write(ctx, e.in, n, 32, 24); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		e.images = append(e.images, synth.Key(i))
	}
	bad := map[string][]byte{
		"img/bad/truncated.png": mustPNG(t)[:40],
		"img/bad/empty.jpg":     {},
		"img/bad/text.webp":     []byte("this is not an image"),
	}
	for key, data := range bad {
		if err := e.in.Write(ctx, key, data); err != nil {
			t.Fatal(err)
		}
		e.images = append(e.images, key)
		e.corrupt[key] = true
	}
	// Filtered out by extension: no row.
	if err := e.in.Write(ctx, "img/readme.txt", []byte("not an image")); err != nil {
		t.Fatal(err)
	}
	if poisoned {
		key := "img/050/" + poisonMark + ".png"
		if err := e.in.Write(ctx, key, mustPNG(t)); err != nil {
			t.Fatal(err)
		}
		e.poison[key] = true
	}
	t.Cleanup(e.stopAll)
	return e
}

func mustPNG(t *testing.T) []byte {
	data, err := synth.PNG(99999, 32, 24)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// natsServer is an in-process NATS server the test can restart on the
// same port and store.
type natsServer struct {
	t    *testing.T
	dir  string
	port int
	mu   sync.Mutex
	srv  *natsembed.Server
}

func startNATS(t *testing.T) *natsServer {
	n := &natsServer{t: t, dir: t.TempDir(), port: freePort(t)}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *natsServer) start() {
	srv, err := natsembed.Start(natsembed.Config{StoreDir: n.dir, Port: n.port, Name: "integration"})
	if err != nil {
		n.t.Fatal(err)
	}
	n.mu.Lock()
	n.srv = srv
	n.mu.Unlock()
}

func (n *natsServer) stop() {
	n.mu.Lock()
	srv := n.srv
	n.srv = nil
	n.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
	}
}

func (n *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// proc is a child process with its output in a log file.
type proc struct {
	name    string
	cmd     *exec.Cmd
	log     string
	metrics string // host:port of its metrics server
	done    chan struct{}
	err     error
}

// start runs a binary with args; its stderr and stdout go to a log file
// that is printed when the test fails.
func (e *env) start(name, binary string, args ...string) *proc {
	e.t.Helper()
	port := freePort(e.t)
	p := &proc{name: name, log: filepath.Join(e.t.TempDir(), name+".log"),
		metrics: fmt.Sprintf("127.0.0.1:%d", port), done: make(chan struct{})}
	logFile, err := os.Create(p.log)
	if err != nil {
		e.t.Fatal(err)
	}
	// The shared flags go right after the subcommand, so that the
	// caller's own (a worker's --nats through a proxy) override them.
	shared := []string{"--nats", e.natsURL(), "--metrics-addr", p.metrics, "--ack-wait", ackWait,
		"--max-deliver", "3", "--log-format", "json"}
	args = append(append(args[:1:1], shared...), args[1:]...)
	p.cmd = exec.Command(binary, args...)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if err := p.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	e.procs = append(e.procs, p)
	return p
}

// startWorker starts a worker process running the nop model, which fails
// every batch holding a poisoned key as a whole (failbatch, so the shard
// fails) and takes delay per batch.
func (e *env) startWorker(name string, delay time.Duration) *proc {
	return e.start(name, binaries.worker, "run",
		"--model", fmt.Sprintf("nop:failbatch=%s,delay=%s", poisonMark, delay),
		"--batch-size", "8", "--concurrency", "2", "--retry-delay", retryDelay,
		"--drain-timeout", "20s", "--name", name)
}

// startCoordinator starts `coordinator run` for the env's dataset.
func (e *env) startCoordinator(name, job string) *proc {
	return e.start(name, binaries.coordinator, "run",
		"--input", e.input, "--output", e.output, "--task", "both", "--prompt", "a photo of",
		"--shard-size", "20", "--job", job, "--progress=false")
}

// wait waits for p to exit and returns its error.
func (p *proc) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %s", p.name, timeout)
		return nil
	}
}

func (p *proc) signal(sig syscall.Signal) { _ = p.cmd.Process.Signal(sig) }

func (p *proc) output() string {
	data, _ := os.ReadFile(p.log)
	return string(data)
}

// stopAll kills what is still running and, when the test failed, prints
// the processes' logs.
func (e *env) stopAll() {
	for _, p := range e.procs {
		select {
		case <-p.done:
		default:
			p.signal(syscall.SIGKILL)
			<-p.done
		}
		if e.t.Failed() {
			out := p.output()
			if len(out) > 20000 {
				out = "..." + out[len(out)-20000:]
			}
			e.t.Logf("---- %s log ----\n%s", p.name, out)
		}
	}
}

// metric reads one unlabelled metric of a process (-1 if unavailable).
func (p *proc) metric(name string) float64 {
	resp, err := http.Get("http://" + p.metrics + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v
			}
		}
	}
	return -1
}

// waitFor polls cond until it holds or the timeout passes.
func (e *env) waitFor(what string, timeout time.Duration, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// conn connects the test itself to NATS (to read job state).
func (e *env) conn() *node.Conn {
	e.t.Helper()
	return e.connURL(e.natsURL())
}

// connURL connects the test to the NATS server at url.
func (e *env) connURL(url string) *node.Conn {
	e.t.Helper()
	c, err := node.Dial(e.ctx, url, "integration-test", queue.Config{}, jobstate.Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(c.NC.Close)
	return c
}

// doneShards returns how many shards of job are done (-1 when unknown).
func (e *env) doneShards(c *node.Conn, job string) int {
	ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
	defer cancel()
	states, err := c.Jobs.Shards(ctx, job)
	if err != nil {
		return -1
	}
	done := 0
	for _, st := range states {
		if st.State == jobstate.StateDone {
			done++
		}
	}
	return done
}

// redelivered counts the done shards of job that took more than one
// delivery.
func (e *env) redelivered(c *node.Conn, job string) int {
	e.t.Helper()
	states, err := c.Jobs.Shards(e.ctx, job)
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, st := range states {
		if st.State == jobstate.StateDone && st.Deliveries > 1 {
			n++
		}
	}
	return n
}

// verify reads the manifest and every output file of job and checks that
// each image has exactly one row, with the caption the nop model gives it
// alone, and corrupt files as error rows. Images of dead-lettered shards
// (lost) must have no row.
func (e *env) verify(job string, lost map[string]bool) coordinator.Manifest {
	e.t.Helper()
	t := e.t
	data, err := e.out.Read(e.ctx, coordinator.ManifestKey(job))
	if err != nil {
		t.Fatalf("manifest: %v", err)
	}
	var m coordinator.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	var model pipeline.Model = &pipeline.NopModel{}
	if e.expect != nil {
		model = e.expect
	}
	prep, err := model.Preprocessor()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{} // key -> caption, "" for error rows
	for _, key := range e.images {
		if lost[key] {
			continue
		}
		want[key] = ""
		if e.corrupt[key] {
			continue
		}
		src, err := e.in.Read(e.ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		img, err := prep.DecodeBytes(key, src)
		if err != nil {
			t.Fatal(err)
		}
		pixels, err := prep.Preprocess(img)
		if err != nil {
			t.Fatal(err)
		}
		res, err := model.Run(e.ctx, pipeline.Task{Caption: true, Prompt: "a photo of"}, []pipeline.Image{{Key: key, Pixels: pixels}})
		if err != nil {
			t.Fatal(err)
		}
		want[key] = res[0].Captions[0]
	}

	rows := map[string]int{}
	files := 0
	err = e.out.List(e.ctx, job+"/shards/", func(obj storage.Object) error {
		files++
		data, err := e.out.Read(e.ctx, obj.Key)
		if err != nil {
			return err
		}
		meta, got, err := schemas.ReadRows(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return fmt.Errorf("%s: %w", obj.Key, err)
		}
		if meta.JobID != job || obj.Key != job+"/shards/"+meta.ShardID+".parquet" {
			t.Errorf("%s: meta job %q shard %q", obj.Key, meta.JobID, meta.ShardID)
		}
		for _, r := range got {
			rows[r.Key]++
			caption, known := want[r.Key]
			switch {
			case !known:
				t.Errorf("%s: unexpected row for %q", obj.Key, r.Key)
			case e.corrupt[r.Key]:
				if r.Error == "" {
					t.Errorf("%s: corrupt file has no error", r.Key)
				}
			case r.Error != "" || len(r.Captions) != 1 || r.Captions[0] != caption:
				t.Errorf("%s: error %q captions %q, want [%q]", r.Key, r.Error, r.Captions, caption)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files != len(m.Files) {
		t.Errorf("%d output files, manifest lists %d", files, len(m.Files))
	}
	for key := range want {
		if rows[key] != 1 {
			t.Errorf("%s: %d rows, want exactly 1", key, rows[key])
		}
	}
	errorRows := 0
	for key := range e.corrupt {
		if !lost[key] {
			errorRows++
		}
	}
	if m.Rows != len(want) || m.ErrorRows != errorRows {
		t.Errorf("manifest: %d rows (%d errors), want %d (%d)", m.Rows, m.ErrorRows, len(want), errorRows)
	}
	for key := range lost {
		if rows[key] != 0 {
			t.Errorf("%s: in a dead-lettered shard but has %d rows", key, rows[key])
		}
	}
	if m.Failed != len(m.Failures) || (m.Failed > 0) != (len(e.poison) > 0) {
		t.Errorf("manifest: %d failed shards %+v, poisoned keys %d", m.Failed, m.Failures, len(e.poison))
	}
	return m
}

// getOK reports whether GET http://addr+path answers 200.
func getOK(addr, path string) bool {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
