package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"blipflow/internal/fixtures"
	"blipflow/model/blas"
	"blipflow/model/engine"
	"blipflow/model/generate"
	"blipflow/pipeline/coordinator"
	"blipflow/schemas"
)

// runLocalJob runs `coordinator run --local` with args and returns the job
// id it printed.
func runLocalJob(t *testing.T, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	base := []string{"--local", "--progress=false", "--metrics-addr", "", "--log-level", "warn"}
	if err := runJob(context.Background(), append(base, args...), &out); err != nil {
		t.Fatalf("run %q: %v", args, err)
	}
	m := regexp.MustCompile(`^job (job-[0-9a-f]+):`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no job id in %q", out.String())
	}
	return m[1]
}

// readShardRows reads every row of a job's shard tables.
func readShardRows(t *testing.T, out, job string) (schemas.Meta, []schemas.Row) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(out, job, "shards", "*.parquet"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no shard tables of %s under %s (%v)", job, out, err)
	}
	var meta schemas.Meta
	var rows []schemas.Row
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m, r, err := schemas.ReadRows(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		meta, rows = m, append(rows, r...)
	}
	return meta, rows
}

// TestRunJobIdentity: the same run spelled differently resumes the job;
// another model makes a new job; OUTPUT/latest names the last one.
func TestRunJobIdentity(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	images := fixtures.Path("images")
	opt, t5 := fixtures.Path("opt-tiny", "model"), fixtures.Path("t5-tiny", "model")
	first := runLocalJob(t, "--input", images, "--output", "out", "--model", opt, "--max-new-tokens", "2")
	again := runLocalJob(t, "--input", images+"/", "--output", "./out/", "--model", opt, "--max-new-tokens", "2")
	if again != first {
		t.Errorf("out/ and ./out/ made job %s, out made %s", again, first)
	}
	other := runLocalJob(t, "--input", images, "--output", "out", "--model", t5, "--max-new-tokens", "2")
	if other == first {
		t.Fatalf("another model resumed job %s", first)
	}
	if _, rows := readShardRows(t, "out", other); len(rows) == 0 || fmt.Sprint(rows[0].TokenIDs) == "" {
		t.Fatalf("job %s has no rows", other)
	}
	latest, err := os.ReadFile(filepath.Join("out", coordinator.LatestFile))
	if err != nil || strings.TrimSpace(string(latest)) != other {
		t.Fatalf("latest = %q (%v), want %s", latest, err, other)
	}
	for path, want := range map[string]os.FileMode{"out": 0o755, filepath.Join("out", other, "manifest.json"): 0o644} {
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if perm := info.Mode().Perm(); perm != want&^umask(t) {
			t.Errorf("%s: mode %v, want %v less the umask", path, perm, want)
		}
	}
}

// TestRunGenerationSettings: caption's generation flags reach the workers
// through the job spec, and the table records them with the length used.
func TestRunGenerationSettings(t *testing.T) {
	dir := t.TempDir()
	opt := fixtures.Path("opt-tiny", "model")
	job := runLocalJob(t, "--input", fixtures.Path("images"), "--output", dir, "--model", opt,
		"--max-new-tokens", "3", "--num-beams", "2", "--num-return-sequences", "2", "--repetition-penalty", "1.5")
	meta, rows := readShardRows(t, dir, job)
	var settings map[string]any
	if err := json.Unmarshal([]byte(meta.GenerationSettings), &settings); err != nil {
		t.Fatalf("generation_settings %q: %v", meta.GenerationSettings, err)
	}
	for key, want := range map[string]float64{"max_new_tokens": 3, "num_beams": 2, "num_return_sequences": 2, "repetition_penalty": 1.5} {
		if settings[key] != want {
			t.Errorf("generation_settings %s = %v, want %v", key, settings[key], want)
		}
	}
	for _, r := range rows {
		if r.Error != "" {
			continue
		}
		if len(r.TokenIDs) != 2 || len(r.TokenIDs[0]) > 3 {
			t.Fatalf("row %s: %d captions of %v tokens, want 2 of at most 3", r.Key, len(r.TokenIDs), r.TokenIDs)
		}
	}
	// Without flags the table still says how long captions could be.
	plain := runLocalJob(t, "--input", fixtures.Path("images"), "--output", dir, "--model", opt)
	meta, _ = readShardRows(t, dir, plain)
	if !strings.Contains(meta.GenerationSettings, `"max_new_tokens":`) {
		t.Errorf("generation_settings %s lacks max_new_tokens", meta.GenerationSettings)
	}
}

// TestRunPromptColumn: a manifest column gives each image its own prompt;
// rows with different prompts are batched together and each gets what it
// gets alone, for OPT and for T5.
func TestRunPromptColumn(t *testing.T) {
	questions := map[string]string{
		"chelsea.png":   "Question: what animal is this? Answer:",
		"coffee.png":    "Question: how many cups of coffee are on the table in this picture? Answer:",
		"astronaut.png": "a photo of",
		"rocket.jpg":    "",
	}
	dir := t.TempDir()
	manifest := filepath.Join(dir, "questions.csv")
	var csv strings.Builder
	csv.WriteString("key,question\n")
	for name, q := range questions {
		fmt.Fprintf(&csv, "%s,%q\n", name, q)
	}
	if err := os.WriteFile(manifest, []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, model := range []string{"opt-tiny", "t5-tiny"} {
		t.Run(model, func(t *testing.T) {
			dir := fixtures.Path(model, "model")
			out := t.TempDir()
			job := runLocalJob(t, "--input", manifest, "--base", fixtures.Path("images"), "--prompt-column", "question",
				"--output", out, "--model", dir, "--max-new-tokens", "8", "--batch-size", "4")
			_, rows := readShardRows(t, out, job)
			e, err := engine.Open(context.Background(), dir, engine.Options{BLAS: blas.Gonum{}})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			if len(rows) != len(questions) {
				t.Fatalf("%d rows, want %d", len(rows), len(questions))
			}
			for _, r := range rows {
				px, err := e.Images.File(fixtures.Path("images", r.Key))
				if err != nil {
					t.Fatal(err)
				}
				alone, err := e.Caption(context.Background(), px, 1, questions[r.Key], generate.Config{MaxNewTokens: generate.Int(8)})
				if err != nil {
					t.Fatal(err)
				}
				if got, want := fmt.Sprint(r.TokenIDs), fmt.Sprint(alone[0].IDs); got != want {
					t.Errorf("%s (%q): pipeline %s, alone %s", r.Key, questions[r.Key], got, want)
				}
			}
		})
	}
}

// TestRunRefusesBadLocations: each mistake fails at once, naming the flag,
// and creates nothing.
func TestRunRefusesBadLocations(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.WriteFile("afile", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir("empty", 0o755); err != nil {
		t.Fatal(err)
	}
	images := fixtures.Path("images")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--input", "nope", "--output", "out"}, "--input nope: no such file or folder"},
		{[]string{"--input", "empty", "--output", "out"}, "no images found in " + filepath.Join(dir, "empty")},
		{[]string{"--input", images, "--output", "afile"}, "--output afile is a file"},
		{[]string{"--input", images, "--output", "out", "--shard-size", "0"}, "--shard-size 0"},
		{[]string{"--input", images, "--output", "out", "--max-new-tokens", "0"}, "--max-new-tokens"},
		{[]string{"--input", images, "--output", "out", "--task", "embed", "--num-beams", "2"}, "only apply to captions"},
	} {
		args := append([]string{"--local", "--progress=false", "--metrics-addr", "", "--log-level", "error", "--model", "nop"}, c.args...)
		err := runJob(context.Background(), args, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.args, err, c.want)
		}
		if _, err := os.Stat("out"); err == nil {
			t.Errorf("%q left out/ behind", c.args)
			os.RemoveAll("out")
		}
	}
}

func TestStatusLocalJSON(t *testing.T) {
	out := t.TempDir()
	job := runLocalJob(t, "--input", fixtures.Path("images"), "--output", out, "--model", "nop")
	var stdout bytes.Buffer
	if err := runStatus(context.Background(), []string{"--local", "--output", out, "--json"}, &stdout); err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	if v["job"] != job {
		t.Errorf("status of %v, want the latest job %s", v["job"], job)
	}
	var check func(path string, x any)
	check = func(path string, x any) {
		switch x := x.(type) {
		case map[string]any:
			for k, val := range x {
				if k != strings.ToLower(k) || strings.Contains(k, "-") {
					t.Errorf("key %s.%s is not snake_case", path, k)
				}
				if path != ".unhealthy_shards" { // shard ids are data
					check(path+"."+k, val)
				}
			}
		case []any:
			for _, val := range x {
				check(path, val)
			}
		}
	}
	check("", v)
	if p, _ := v["progress"].(map[string]any); p["done"] != float64(1) {
		t.Errorf("progress %v", v["progress"])
	}
}

func umask(t *testing.T) os.FileMode {
	t.Helper()
	probe := filepath.Join(t.TempDir(), "probe")
	if err := os.WriteFile(probe, nil, 0o777); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(probe)
	if err != nil {
		t.Fatal(err)
	}
	return 0o777 &^ info.Mode().Perm()
}

// Two local jobs at once: the second finds 127.0.0.1:9091 taken and
// serves metrics on a free loopback port instead of failing.
func TestLocalMetricsPortTaken(t *testing.T) {
	if ln, err := net.Listen("tcp", localMetricsAddr); err == nil {
		defer ln.Close() // stands in for the first job; else something else holds it
	}
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var f runFlags
	f.register(fs)
	if err := fs.Parse([]string{"--local"}); err != nil {
		t.Fatal(err)
	}
	srv, err := serveMetrics(fs, &f, prometheus.NewRegistry(), nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	if addr := srv.Addr(); addr == localMetricsAddr || !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("serving on %s, want another loopback port", addr)
	}
	// Asked for explicitly, a taken address is an error.
	fs = flag.NewFlagSet("run", flag.ContinueOnError)
	f = runFlags{}
	f.register(fs)
	if err := fs.Parse([]string{"--local", "--metrics-addr", srv.Addr()}); err != nil {
		t.Fatal(err)
	}
	if _, err := serveMetrics(fs, &f, prometheus.NewRegistry(), nil, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil {
		t.Fatal("a taken --metrics-addr was accepted")
	}
}
