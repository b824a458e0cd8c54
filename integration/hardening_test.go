package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"blipflow/internal/pngbomb"
)

// procStatus reads a field of /proc/PID/status in kB ("VmHWM", "VmSize").
func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("status of process %d: %v", pid, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("%s of process %d: %q", field, pid, rest)
			}
			return kb
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// writeBomb stores a black PNG of the given size and format, streamed.
func (e *env) writeBomb(key string, width, height int, f pngbomb.Format) int {
	e.t.Helper()
	var buf bytes.Buffer
	if err := pngbomb.Write(&buf, width, height, f); err != nil {
		e.t.Fatal(err)
	}
	if err := e.in.Write(e.ctx, key, buf.Bytes()); err != nil {
		e.t.Fatal(err)
	}
	return buf.Len()
}

// shardRows reads the rows of job by key (the manifest must exist).
func (e *env) shardRows(job string) map[string]string {
	e.t.Helper()
	rows := map[string]string{}
	_, got := jobRows(e.t, e.output, job)
	for key, r := range got {
		rows[key] = r.Error
	}
	return rows
}

// TestHostileImagesBoundedMemory feeds one worker process a shard with
// two crafted 13300×13300 16-bit RGBA PNGs (1.4 MB each, 1.4 GB decoded:
// refused from their headers) and four 6500×6500 RGBA PNGs that are
// allowed (296 MB of decode cost each) under a 700 MB decode budget: the
// bombs get error rows naming the limit, every other image its row, and
// the worker's peak RSS (VmHWM) stays under the budget plus 350 MB of
// runtime, S3 client and model overhead.
func TestHostileImagesBoundedMemory(t *testing.T) {
	e := newEnv(t, 6, false)
	const budget = 700 << 20
	bombSize := e.writeBomb("img/bomb/a.png", 13300, 13300, pngbomb.Depth16RGBA)
	var bombData []byte
	var err error
	if bombData, err = e.in.Read(e.ctx, "img/bomb/a.png"); err != nil {
		t.Fatal(err)
	}
	if err := e.in.Write(e.ctx, "img/bomb/b.png", bombData); err != nil {
		t.Fatal(err)
	}
	t.Logf("crafted PNG: %d bytes", bombSize)
	var big bytes.Buffer
	if err := pngbomb.Write(&big, 6500, 6500, pngbomb.Depth8RGBA); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		key := fmt.Sprintf("img/big/%d.png", i)
		if err := e.in.Write(e.ctx, key, big.Bytes()); err != nil {
			t.Fatal(err)
		}
		e.images = append(e.images, key)
	}
	w := e.start("worker", binaries.worker, "run", "--model", "nop", "--batch-size", "4", "--concurrency", "2",
		"--decode-budget", strconv.Itoa(budget), "--decoders", "4", "--retry-delay", retryDelay, "--name", "worker")
	coord := e.start("coordinator", binaries.coordinator, "run", "--input", e.input, "--output", e.output,
		"--task", "caption", "--shard-size", "20", "--job", "bombs", "--progress=false")
	if err := coord.wait(t, 3*time.Minute); err != nil {
		t.Fatalf("coordinator: %v", err)
	}
	hwm := procStatus(t, w.cmd.Process.Pid, "VmHWM") << 10
	t.Logf("worker peak RSS (VmHWM): %.0f MB with a %d MB decode budget", float64(hwm)/1e6, budget>>20)
	if limit := int64(budget + 350<<20); hwm > limit {
		t.Errorf("worker peak RSS %d MB over %d MB", hwm>>20, limit>>20)
	}
	rows := e.shardRows("bombs")
	for _, key := range []string{"img/bomb/a.png", "img/bomb/b.png"} {
		if msg := rows[key]; !strings.Contains(msg, "decode memory limit") || !strings.Contains(msg, "13300x13300") {
			t.Errorf("%s: error %q, want the decode memory limit named", key, msg)
		}
	}
	for _, key := range e.images {
		msg, ok := rows[key]
		if !ok || (msg != "") != e.corrupt[key] {
			t.Errorf("%s: row %v, error %q", key, ok, msg)
		}
	}
}

// TestKillerImageUnderMemoryCap runs workers whose address space is capped
// (RLIMIT_AS, set on the running process) a little above what they use,
// on a shard holding one image whose decode fits the per-image limit but
// not the cap: the first worker dies decoding it, the next delivery finds
// the image recorded in the job state and gives it an error row naming
// it, and every good image gets its row.
func TestKillerImageUnderMemoryCap(t *testing.T) {
	e := newEnv(t, 8, false)
	t.Setenv("GOTRACEBACK", "none") // a dying worker's log stays short
	// 12000×12000 RGBA: 576 MB decoded plus 432 MB of RGB copy.
	e.writeBomb("img/killer.png", 12000, 12000, pngbomb.Depth8RGBA)
	capped := func(name string) *proc {
		p := e.start(name, binaries.worker, "run", "--model", "nop", "--batch-size", "4", "--concurrency", "1",
			"--retry-delay", retryDelay, "--name", name)
		e.waitFor(name+" ready", time.Minute, func() bool { return getOK(p.metrics, "/readyz") })
		size := procStatus(t, p.cmd.Process.Pid, "VmSize") << 10
		limit := uint64(size + 800<<20)
		if err := unix.Prlimit(p.cmd.Process.Pid, unix.RLIMIT_AS, &unix.Rlimit{Cur: limit, Max: limit}, nil); err != nil {
			t.Fatalf("prlimit: %v", err)
		}
		t.Logf("%s: address space %d MB, capped at %d MB", name, size>>20, limit>>20)
		return p
	}
	first := capped("worker-1")
	coord := e.start("coordinator", binaries.coordinator, "run", "--input", e.input, "--output", e.output,
		"--task", "caption", "--shard-size", "50", "--job", "killer", "--progress=false")
	select {
	case <-first.done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the capped worker did not die on the killer image")
	}
	t.Logf("worker-1 exited: %v", first.err)
	actives, err := e.conn().Jobs.Actives(e.ctx, "killer")
	if err != nil || len(actives) != 1 {
		t.Fatalf("active records after the death: %+v %v", actives, err)
	}
	for shard, a := range actives {
		if a.Images["img/killer.png"] != "decode" {
			t.Fatalf("shard %s: active record %+v does not name the killer image", shard, a)
		}
	}
	// The next worker runs without a cap: it must still not decode the image
	// the first one died on (had it done so, the row would carry no error),
	// and a cap tight enough to kill on that image leaves it little room for
	// anything else on a loaded machine.
	second := e.start("worker-2", binaries.worker, "run", "--model", "nop", "--batch-size", "4", "--concurrency", "1",
		"--retry-delay", retryDelay, "--name", "worker-2")
	e.waitFor("worker-2 ready", time.Minute, func() bool { return getOK(second.metrics, "/readyz") })
	if err := coord.wait(t, 3*time.Minute); err != nil {
		t.Fatalf("coordinator: %v", err)
	}
	rows := e.shardRows("killer")
	if msg := rows["img/killer.png"]; !strings.Contains(msg, "killed worker") || !strings.Contains(msg, `"img/killer.png" (decode)`) {
		t.Errorf("killer row error %q, want it named as the image the worker died on", msg)
	}
	for _, key := range e.images {
		msg, ok := rows[key]
		if !ok || (msg != "") != e.corrupt[key] {
			t.Errorf("%s: row %v, error %q", key, ok, msg)
		}
	}
}
