// Command peerbench times blipflow's model stages beside the same stages in
// plain PyTorch on this machine, in one run: it alternates `worker bench`
// and tools/torch_stages.py for a number of rounds (so both see the same
// load), keeps each stage's best time, and prints both columns, the ratio
// and each process's peak resident memory.
//
//	go run ./tools/peerbench --dtype bf16 --threads 2 --rounds 2
//
// PyTorch comes from Debian (`apt-get install python3-torch`, run with
// /usr/bin/python3); the worker binary is built from this checkout unless
// --worker names one.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// timing is one stage's time from one side.
type timing struct {
	Stage string  `json:"stage"`
	Batch int     `json:"batch"`
	MS    float64 `json:"ms"`
}

// run is one process's timings and peak memory.
type run struct {
	timings []timing
	peakRSS int64 // bytes
}

func main() {
	if err := peerbench(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "peerbench:", err)
		os.Exit(1)
	}
}

func peerbench(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("peerbench", flag.ContinueOnError)
	dtype := fs.String("dtype", "bf16", "weight dtype on both sides: bf16 or fp32")
	threads := fs.Int("threads", runtime.NumCPU(), "threads on both sides (torch.set_num_threads and OPENBLAS_NUM_THREADS; GOMAXPROCS; OMP_NUM_THREADS)")
	rounds := fs.Int("rounds", 2, "alternate the two sides this many times; each stage keeps its best time")
	worker := fs.String("worker", "", "worker binary (default: build ./cmd/worker from this checkout)")
	python := fs.String("python", "/usr/bin/python3", "Python with torch (Debian's python3-torch)")
	script := fs.String("script", "tools/torch_stages.py", "the PyTorch stage script")
	visionLayers := fs.Int("vision-layers", 0, "shorten the vision encoder on both sides (0: the real 39)")
	textLayers := fs.Int("text-layers", 0, "shorten the language model on both sides (0: the real 32)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dtype != "bf16" && *dtype != "fp32" {
		return fmt.Errorf("--dtype %q: want bf16 or fp32", *dtype)
	}
	if *rounds < 1 || *threads < 1 {
		return errors.New("--rounds and --threads must be positive")
	}
	if _, err := os.Stat(*script); err != nil {
		return fmt.Errorf("PyTorch script: %w (run from the repository root or pass --script)", err)
	}
	bin := *worker
	if bin == "" {
		dir, err := os.MkdirTemp("", "peerbench")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		bin = filepath.Join(dir, "worker")
		build := exec.Command("go", "build", "-o", bin, "./cmd/worker")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("building the worker: %w", err)
		}
	}
	// The worker gets its thread budget (GOMAXPROCS, and OpenMP's for
	// oneDNN) and decides OpenBLAS's threads itself (one with bf16 weights,
	// spreading products over GOMAXPROCS goroutines); PyTorch gets its
	// BLAS's and OpenMP's.
	env := append(os.Environ(),
		"OMP_NUM_THREADS="+strconv.Itoa(*threads),
		"GOMAXPROCS="+strconv.Itoa(*threads))
	if *visionLayers > 0 {
		env = append(env, "VISION_LAYERS="+strconv.Itoa(*visionLayers))
	}
	if *textLayers > 0 {
		env = append(env, "TEXT_LAYERS="+strconv.Itoa(*textLayers))
	}
	torchCmd := func() *exec.Cmd {
		c := exec.Command(*python, *script, *dtype, strconv.Itoa(*threads))
		c.Env = append(env, "OPENBLAS_NUM_THREADS="+strconv.Itoa(*threads))
		return c
	}
	workerCmd := func() *exec.Cmd {
		a := []string{"bench", "--shape", "blip2-opt-2.7b", "--dtype", *dtype}
		if *visionLayers > 0 {
			a = append(a, "--vision-layers", strconv.Itoa(*visionLayers))
		}
		if *textLayers > 0 {
			a = append(a, "--text-layers", strconv.Itoa(*textLayers))
		}
		c := exec.Command(bin, a...)
		c.Env = env
		return c
	}

	fmt.Fprintf(stdout, "peerbench %s, %s, %d threads, %d rounds; load average at start: %s\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), cpuModel(), *threads, *rounds, loadAverage())
	var torchRuns, ourRuns []run
	for r := 0; r < *rounds; r++ {
		order := []string{"torch", "blipflow"}
		if r%2 == 1 { // alternate who goes first
			order[0], order[1] = order[1], order[0]
		}
		for _, side := range order {
			fmt.Fprintf(os.Stderr, "round %d/%d: %s\n", r+1, *rounds, side)
			if side == "torch" {
				res, err := measure(torchCmd(), parseTorch)
				if err != nil {
					return fmt.Errorf("PyTorch: %w", err)
				}
				torchRuns = append(torchRuns, res)
			} else {
				res, err := measure(workerCmd(), parseWorker)
				if err != nil {
					return fmt.Errorf("worker bench: %w", err)
				}
				ourRuns = append(ourRuns, res)
			}
		}
	}
	printTable(stdout, *dtype, torchRuns, ourRuns)
	return nil
}

// measure runs c, parses its standard output and reads its peak resident
// memory from the kernel's accounting of the finished child.
func measure(c *exec.Cmd, parse func([]byte) ([]timing, error)) (run, error) {
	var out bytes.Buffer
	c.Stdout = &out
	c.Stderr = os.Stderr
	if err := c.Run(); err != nil {
		return run{}, fmt.Errorf("%s: %w", strings.Join(c.Args, " "), err)
	}
	ts, err := parse(out.Bytes())
	if err != nil {
		return run{}, err
	}
	if len(ts) == 0 {
		return run{}, fmt.Errorf("%s printed no stage timings:\n%s", c.Args[0], out.String())
	}
	var rss int64
	if u, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = u.Maxrss * 1024 // kilobytes on Linux
	}
	return run{timings: ts, peakRSS: rss}, nil
}

// parseTorch reads torch_stages.py's JSON lines.
func parseTorch(b []byte) ([]timing, error) {
	var out []timing
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var t timing
		if err := json.Unmarshal([]byte(line), &t); err != nil {
			return nil, fmt.Errorf("torch line %q: %w", line, err)
		}
		out = append(out, t)
	}
	return out, sc.Err()
}

// workerRow matches a row of worker bench's table: stage, batch, ms, ...
var workerRow = regexp.MustCompile(`^\s*([a-z][a-z0-9 ()\-]*?)\s+(\d+)\s+([0-9.]+)\s`)

// parseWorker reads the rows of worker bench's timing table.
func parseWorker(b []byte) ([]timing, error) {
	var out []timing
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		m := workerRow.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		batch, _ := strconv.Atoi(m[2])
		ms, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			continue
		}
		out = append(out, timing{Stage: m[1], Batch: batch, MS: ms})
	}
	return out, sc.Err()
}

type key struct {
	stage string
	batch int
}

// best keeps each stage's fastest time over runs, in first-seen order.
func best(runs []run) ([]key, map[key]float64) {
	var order []key
	m := map[key]float64{}
	for _, r := range runs {
		for _, t := range r.timings {
			k := key{t.Stage, t.Batch}
			if v, ok := m[k]; !ok || t.MS < v {
				if !ok {
					order = append(order, k)
				}
				m[k] = t.MS
			}
		}
	}
	return order, m
}

func peak(runs []run) int64 {
	var p int64
	for _, r := range runs {
		p = max(p, r.peakRSS)
	}
	return p
}

// printTable prints each stage's best time on both sides, blipflow's stages
// first in its order, then any stage only PyTorch timed.
func printTable(w io.Writer, dtype string, torchRuns, ourRuns []run) {
	ourOrder, ours := best(ourRuns)
	torchOrder, torch := best(torchRuns)
	keys := ourOrder
	for _, k := range torchOrder {
		if _, ok := ours[k]; !ok {
			keys = append(keys, k)
		}
	}
	cell := func(v float64, ok bool) string {
		if !ok {
			return "-"
		}
		return fmt.Sprintf("%.1f", v)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\nstage\tbatch\tPyTorch %s ms\tblipflow %s ms\tspeed-up\t\n", dtype, dtype)
	for _, k := range keys {
		t, hasT := torch[k]
		o, hasO := ours[k]
		ratio := "-"
		if hasT && hasO && o > 0 {
			ratio = fmt.Sprintf("%.2fx", t/o)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t\n", k.stage, k.batch, cell(t, hasT), cell(o, hasO), ratio)
	}
	torchRSS, ourRSS := peak(torchRuns), peak(ourRuns)
	fmt.Fprintf(tw, "peak RSS (GB)\t\t%.2f\t%.2f\t%s\t\n", float64(torchRSS)/1e9, float64(ourRSS)/1e9, ratioOf(torchRSS, ourRSS))
	tw.Flush()
	fmt.Fprintln(w, "\nspeed-up = PyTorch time / blipflow time (above 1: blipflow is faster); the RSS ratio is PyTorch / blipflow.")
}

func ratioOf(a, b int64) string {
	if a <= 0 || b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", float64(a)/float64(b))
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if name, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":")) + fmt.Sprintf(" (%d cores)", runtime.NumCPU())
		}
	}
	return runtime.GOARCH
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
