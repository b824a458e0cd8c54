package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"blipflow/internal/cli"
	"blipflow/internal/genflags"
	"blipflow/model/engine"
	"blipflow/pipeline"
	"blipflow/pipeline/coordinator"
	"blipflow/pipeline/fetch"
	"blipflow/pipeline/local"
	"blipflow/pipeline/metrics"
	"blipflow/pipeline/node"
	"blipflow/pipeline/worker"
	"blipflow/sharding"
)

func init() {
	commands["run"] = command{summary: "run a job (--local: embedded NATS and workers in this process)", run: runJob}
}

// runFlags are the flags of `coordinator run`.
type runFlags struct {
	node         node.Flags
	local        bool
	input        string
	output       string
	model        string
	task         string
	prompt       string
	shardSize    int
	workers      int
	batchSize    int
	concurrency  int
	job          string
	wait         bool
	storeDir     string
	extensions   string
	minSize      int64
	maxSize      int64
	showProgress bool
	dedup        bool
	runtime      engine.Options // with --local: --backend, --dtype
	dedupTable   string
	allowLocal   bool
	allowPrivate bool
	index        bool
	inputs       sharding.InputOptions
	fetch        fetch.Config
	promptColumn string
	gen          *genflags.Flags
}

func (f *runFlags) register(fs *flag.FlagSet) {
	f.node.Register(fs, ":9091")
	fs.BoolVar(&f.local, "local", false, "run everything in this process: embedded NATS with JetStream and in-process workers")
	fs.StringVar(&f.input, "input", node.EnvString("BLIPFLOW_INPUT", ""), "input images: s3://bucket/prefix or a folder; a .csv, .jsonl or .parquet manifest; WebDataset tars such as 's3://bucket/data/{000..123}.tar' (env BLIPFLOW_INPUT)")
	fs.StringVar(&f.inputs.Format, "input-format", node.EnvString("BLIPFLOW_INPUT_FORMAT", sharding.FormatAuto), "files, manifest or webdataset (default: from --input; webdataset with a folder takes its .tar files) (env BLIPFLOW_INPUT_FORMAT)")
	fs.StringVar(&f.inputs.Manifest.URLColumn, "url-column", "", "manifest column with each image's http(s) URL, location or key under --base (default: url if present, else the key column)")
	fs.StringVar(&f.inputs.Manifest.KeyColumn, "key-column", "", "manifest column with each row's key, the output's join column (default: key if present, else the URL column)")
	fs.StringVar(&f.inputs.Manifest.Base, "base", "", "location that relative manifest keys are read under (default: the manifest's folder)")
	fs.StringVar(&f.output, "output", node.EnvString("BLIPFLOW_OUTPUT", ""), "output location: s3://bucket/prefix or a folder (env BLIPFLOW_OUTPUT)")
	fs.StringVar(&f.model, "model", node.EnvString("BLIPFLOW_MODEL", ""), "checkpoint folder or model name, or nop: with --local the model run here (its content fingerprint is part of the job id); else the name of the workers' model, part of the job id (env BLIPFLOW_MODEL)")
	fs.StringVar(&f.task, "task", node.EnvString("BLIPFLOW_TASK", pipeline.TaskCaption), "caption, embed or both (env BLIPFLOW_TASK)")
	fs.StringVar(&f.prompt, "prompt", node.EnvString("BLIPFLOW_PROMPT", ""), "text the captions continue (env BLIPFLOW_PROMPT)")
	fs.StringVar(&f.promptColumn, "prompt-column", "", "manifest column with each image's own prompt, e.g. a question (rows without one use --prompt)")
	f.gen = genflags.Register(fs)
	fs.IntVar(&f.shardSize, "shard-size", node.EnvInt("BLIPFLOW_SHARD_SIZE", 256), "images per shard (env BLIPFLOW_SHARD_SIZE)")
	fs.IntVar(&f.workers, "workers", node.EnvInt("BLIPFLOW_WORKERS", 1), "with --local: in-process workers (env BLIPFLOW_WORKERS)")
	fs.IntVar(&f.batchSize, "batch-size", node.EnvInt("BLIPFLOW_BATCH_SIZE", 8), "with --local: images per model call (env BLIPFLOW_BATCH_SIZE)")
	fs.IntVar(&f.concurrency, "concurrency", node.EnvInt("BLIPFLOW_CONCURRENCY", 2), "with --local: shards each worker processes at once (env BLIPFLOW_CONCURRENCY)")
	fs.StringVar(&f.job, "job", node.EnvString("BLIPFLOW_JOB", ""), "job id (default: derived from the input and output locations, the model's content, the task and its settings, so the same run is the same job)")
	fs.BoolVar(&f.wait, "wait", true, "wait for the job to finish and write its manifest (without --local; --wait=false returns once published)")
	fs.StringVar(&f.storeDir, "store-dir", node.EnvString("BLIPFLOW_STORE_DIR", ""), "with --local: JetStream folder (default OUTPUT/.blipflow/nats for a local output, else the user cache folder); the same folder resumes the job")
	fs.StringVar(&f.extensions, "ext", node.EnvString("BLIPFLOW_EXTENSIONS", strings.Join(sharding.DefaultExtensions, ",")), "image extensions to keep")
	fs.Int64Var(&f.minSize, "min-size", 0, "skip images smaller than this many bytes")
	fs.Int64Var(&f.maxSize, "max-size", 0, "skip images larger than this many bytes (0: no limit)")
	fs.BoolVar(&f.showProgress, "progress", true, "draw a progress bar on stderr")
	f.fetch.RegisterFlags(fs)
	f.runtime.RegisterFlags(fs)
	fs.BoolVar(&f.dedup, "dedup", false, "process each image content (SHA-256 of the bytes) once: later copies become rows with duplicate_of in extra")
	fs.BoolVar(&f.allowLocal, "allow-local-paths", false, "let a manifest name local paths and s3:// locations outside its own folder (or --base)")
	fs.BoolVar(&f.allowPrivate, "allow-private-addresses", false, "let a manifest's URLs reach loopback, link-local and private network addresses")
	fs.Int64Var(&f.inputs.Manifest.MaxBytes, "max-manifest-bytes", sharding.DefaultMaxManifestBytes, "largest manifest file read, in bytes")
	fs.BoolVar(&f.index, "index", false, "with --task embed or both and a local --output: build a search index (JOB/index.bfi) when the last shard lands")
	fs.StringVar(&f.dedupTable, "dedup-table", "", "also skip images whose content is in this earlier results table (a .parquet path or s3:// URL); implies --dedup")
}

// request builds the job request from the flags, checking them and the
// local input and output before anything is created.
func (f *runFlags) request() (coordinator.Request, error) {
	if f.input == "" || f.output == "" {
		return coordinator.Request{}, errors.New("--input and --output are required")
	}
	switch {
	case f.shardSize < 1:
		return coordinator.Request{}, fmt.Errorf("--shard-size %d: want at least 1", f.shardSize)
	case f.local && f.workers < 1:
		return coordinator.Request{}, fmt.Errorf("--workers %d: want at least 1", f.workers)
	case f.local && f.batchSize < 1:
		return coordinator.Request{}, fmt.Errorf("--batch-size %d: want at least 1", f.batchSize)
	case f.local && f.concurrency < 1:
		return coordinator.Request{}, fmt.Errorf("--concurrency %d: want at least 1", f.concurrency)
	}
	if err := checkLocations(f.input, f.output); err != nil {
		return coordinator.Request{}, err
	}
	task, err := pipeline.ParseTask(f.task, f.prompt)
	if err != nil {
		return coordinator.Request{}, fmt.Errorf("--task: %w", err)
	}
	gen, err := f.gen.Config()
	if err != nil {
		return coordinator.Request{}, err
	}
	raw, err := json.Marshal(gen)
	if err != nil {
		return coordinator.Request{}, fmt.Errorf("generation settings: %w", err)
	}
	if string(raw) != "{}" || f.promptColumn != "" {
		if !task.Caption {
			return coordinator.Request{}, fmt.Errorf("--task %s: generation settings and --prompt-column only apply to captions", task.Name())
		}
		if string(raw) != "{}" {
			task.Generation = string(raw)
		}
		task.PromptColumn = f.promptColumn
	}
	return coordinator.Request{
		ID: f.job, Input: f.input, Output: f.output, Task: task, ShardSize: f.shardSize, Model: f.model,
		Filter: sharding.Filter{Extensions: sharding.ParseExtensions(f.extensions), MinSize: f.minSize, MaxSize: f.maxSize},
		Dedup:  f.dedup, DedupTable: f.dedupTable, InputOptions: f.inputs,
		AllowLocalPaths: f.allowLocal, AllowPrivateAddresses: f.allowPrivate,
	}, nil
}

// checkLocations fails at once for a local input that does not exist and
// a local output that is a file (remote locations are checked when opened).
func checkLocations(input, output string) error {
	if path, ok := localPath(input); ok && !strings.ContainsAny(path, "{*?[") {
		if _, err := os.Stat(path); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("--input %s: no such file or folder", input)
			}
			return fmt.Errorf("--input %s: %w", input, err)
		}
	}
	if path, ok := localPath(output); ok {
		if info, err := os.Stat(path); err == nil && !info.IsDir() {
			return fmt.Errorf("--output %s is a file; want a folder (created if missing) or an s3:// prefix", output)
		}
	}
	return nil
}

// localPath returns the file path of a local location (a path or a
// file:// URL).
func localPath(location string) (string, bool) {
	if strings.HasPrefix(location, "file://") {
		return strings.TrimPrefix(location, "file://"), true
	}
	if strings.Contains(location, "://") {
		return "", false
	}
	return location, true
}

// localStoreDir picks the embedded server's JetStream folder.
func (f *runFlags) localStoreDir() (string, error) {
	if f.storeDir != "" {
		return f.storeDir, nil
	}
	if !strings.Contains(f.output, "://") || strings.HasPrefix(f.output, "file://") {
		return filepath.Join(strings.TrimPrefix(f.output, "file://"), ".blipflow", "nats"), nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no --store-dir and no cache folder: %w", err)
	}
	return filepath.Join(cache, "blipflow", "nats"), nil
}

func runJob(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var f runFlags
	f.register(fs)
	setUsage(fs, "coordinator run --local --input IN --model MODEL --output OUT [flags]\n       coordinator run --nats URL --input IN --output OUT [flags]",
		"Run a job: list the input, cut it into shards, publish them and follow the job to its manifest.\n"+
			"With --local the workers run in this process on an embedded NATS kept under OUTPUT/.blipflow.\n"+
			"The same command again resumes the job; another model, input, output or setting is another job.")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	show := newProgress(os.Stderr, isTerminal(os.Stderr), f.showProgress)
	log, err := f.node.Logger(show)
	if err != nil {
		return err
	}
	show.setLogger(log)
	req, err := f.request()
	if err != nil {
		return err
	}
	if f.index {
		if err := checkIndexable(&f, req.Task.Embed); err != nil {
			return err
		}
	}
	reg := prometheus.NewRegistry()
	cm := metrics.NewCoordinator(reg)
	var ready readiness
	srv, err := serveMetrics(fs, &f, reg, ready.check, log)
	if err != nil {
		return err
	}
	if srv != nil {
		defer srv.Close(context.WithoutCancel(ctx))
	}
	var job string
	onStatus := func(st coordinator.Status) {
		job = st.Spec.ID
		show.update(st)
	}

	var manifest coordinator.Manifest
	if f.local {
		manifest, err = f.runLocal(ctx, &req, cm, &ready, onStatus, log)
	} else {
		manifest, err = f.runRemote(ctx, req, cm, &ready, onStatus, stdout, log)
	}
	show.finish()
	if ctx.Err() != nil {
		what := "the job"
		if job != "" {
			what = "job " + job
		}
		fmt.Fprintf(os.Stderr, "interrupted: %s keeps its finished shards; run the same command again to resume it\n", what)
		return ctx.Err()
	}
	if err != nil || manifest.Job == "" {
		return err
	}
	if err := report(stdout, manifest, show.stats()); err != nil || !f.index {
		return err
	}
	return buildJobIndex(stdout, manifest)
}

// serveMetrics starts the metrics server. A local run that was not given
// --metrics-addr listens on loopback only and, when the default port is
// taken (another local job), on a free port, saying so.
func serveMetrics(fs *flag.FlagSet, f *runFlags, reg *prometheus.Registry, ready func() error, log *slog.Logger) (*metrics.Server, error) {
	addr := f.node.MetricsAddr
	if addr == "" {
		return nil, nil
	}
	explicit := os.Getenv("BLIPFLOW_METRICS_ADDR") != ""
	fs.Visit(func(fl *flag.Flag) { explicit = explicit || fl.Name == "metrics-addr" })
	if f.local && !explicit {
		addr = localMetricsAddr
	}
	srv, err := metrics.Serve(addr, reg, ready, log)
	if err != nil && f.local && !explicit {
		srv, err = metrics.Serve("127.0.0.1:0", reg, ready, log)
		if err == nil {
			log.Info("metrics port taken (another local job?); serving on a free port", "wanted", addr, "addr", srv.Addr())
			return srv, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w (--metrics-addr \"\" disables the metrics server)", err)
	}
	log.Info("serving metrics", "addr", srv.Addr())
	return srv, nil
}

// localMetricsAddr is where a local run serves metrics by default.
const localMetricsAddr = "127.0.0.1:9091"

// runLocal runs the job with an embedded server and in-process workers.
// It completes req with the model's identity.
func (f *runFlags) runLocal(ctx context.Context, req *coordinator.Request, cm *metrics.Coordinator, ready *readiness, onStatus func(coordinator.Status), log *slog.Logger) (manifest coordinator.Manifest, err error) {
	if f.model == "" {
		return coordinator.Manifest{}, errors.New("--local needs --model (a checkpoint folder, a model name, or nop)")
	}
	storeDir, err := f.localStoreDir()
	if err != nil {
		return coordinator.Manifest{}, err
	}
	model, err := pipeline.LoadModel(ctx, f.model, localModels(f.runtime))
	if err != nil {
		return coordinator.Manifest{}, err
	}
	if closer, ok := model.(io.Closer); ok {
		defer closer.Close()
	}
	req.Model = model.ID()
	if fp, ok := model.(interface{ Fingerprint() string }); ok {
		req.Model = fp.Fingerprint() // the content, wherever the checkpoint lies
	}
	if path, ok := localPath(f.output); ok {
		if _, statErr := os.Stat(path); errors.Is(statErr, fs.ErrNotExist) {
			// A run that finds nothing to do leaves no output behind.
			defer func() {
				if errors.Is(err, coordinator.ErrNoImages) {
					os.RemoveAll(path)
				}
			}()
		}
		// The output folder is created readable by others, as any folder;
		// only the job store under it (.blipflow) is private.
		if err := os.MkdirAll(path, 0o755); err != nil {
			return coordinator.Manifest{}, fmt.Errorf("--output: %w", err)
		}
	}
	log.Info("running locally", "model", model.ID(), "store_dir", storeDir, "workers", f.workers)
	return local.Run(ctx, local.Config{
		StoreDir: storeDir, Request: *req, Model: model, Workers: f.workers,
		Worker:             worker.Config{BatchSize: f.batchSize, Concurrency: f.concurrency, Fetch: f.fetch},
		Queue:              f.node.Queue,
		Jobs:               f.node.Jobs,
		Storage:            f.node.Storage,
		CoordinatorMetrics: cm,
		OnConnected:        ready.connected,
		OnStatus:           onStatus,
		Log:                log,
	})
}

// runRemote publishes the job to the NATS at --nats and, with --wait,
// follows it to its manifest.
func (f *runFlags) runRemote(ctx context.Context, req coordinator.Request, cm *metrics.Coordinator, ready *readiness, onStatus func(coordinator.Status), stdout io.Writer, log *slog.Logger) (coordinator.Manifest, error) {
	conn, err := node.Dial(ctx, f.node.NATSURL, "blipflow-coordinator", f.node.Queue, f.node.Jobs, log)
	if err != nil {
		return coordinator.Manifest{}, err
	}
	defer conn.Close()
	ready.connected(conn)
	coord, err := coordinator.New(coordinator.Config{
		JS: conn.JS, Queue: conn.Queue, Jobs: conn.Jobs, OpenStore: f.node.OpenStore(), Metrics: cm, Log: log,
	})
	if err != nil {
		return coordinator.Manifest{}, err
	}
	spec, err := coord.Submit(ctx, req)
	if err != nil {
		return coordinator.Manifest{}, err
	}
	if !f.wait {
		fmt.Fprintf(stdout, "job %s: %d shards, %d images published\n", spec.ID, spec.Shards, spec.Images)
		return coordinator.Manifest{}, nil
	}
	return followAndFinish(ctx, coord, spec.ID, onStatus)
}

// followAndFinish waits for the job and writes its manifest.
func followAndFinish(ctx context.Context, coord *coordinator.Coordinator, job string, onStatus func(coordinator.Status)) (coordinator.Manifest, error) {
	st, err := coord.Follow(ctx, job, onStatus)
	if err != nil {
		return coordinator.Manifest{}, fmt.Errorf("job %s: %w", job, err)
	}
	return coord.Finish(ctx, st)
}

// report prints the outcome with this run's duration and throughput;
// dead-lettered shards make it an error.
func report(w io.Writer, m coordinator.Manifest, run runStats) error {
	fmt.Fprintf(w, "job %s: %d/%d shards done, %d rows (%d with errors); %s\nmanifest %s\n",
		m.Job, m.Done, m.Shards, m.Rows, m.ErrorRows, run.summary(), strings.TrimSuffix(m.Output, "/")+"/"+coordinator.ManifestKey(m.Job))
	for _, fail := range m.Failures {
		fmt.Fprintf(w, "  failed shard %s (%d images, %d deliveries): %s\n", fail.Shard, fail.Images, fail.Deliveries, fail.Reason)
	}
	if m.Failed > 0 {
		return fmt.Errorf("job %s: %d of %d shards failed and were dead-lettered", m.Job, m.Failed, m.Shards)
	}
	return nil
}
