package scalebench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"blipflow/pipeline/coordinator"
	"blipflow/pipeline/jobstate"
	"blipflow/pipeline/node"
	"blipflow/pipeline/queue"
	"blipflow/pipeline/synth"
	"blipflow/sharding"
)

// Config is one benchmark run.
type Config struct {
	Images, ShardSize, Workers, BatchSize, Concurrency int
	// Dir holds the NATS server's JetStream folder.
	Dir string
	// Exe is the coordinator binary, started once per role
	// (`coordinator scale-bench --role ROLE`).
	Exe string
	// Stderr receives the role processes' logs.
	Stderr io.Writer
}

// Result is one run's measurements.
type Result struct {
	Images, Shards int
	// PlanSeconds is listing and cutting alone (no publishing), in this
	// process; PublishSeconds the coordinator's list, cut and publish.
	PlanSeconds, PublishSeconds float64
	// RunSeconds is from the start of publishing to the last shard done
	// (workers pull from the first shard on).
	RunSeconds float64
	// FollowSeconds is the coordinator's time following the job after
	// publishing; FollowCPU its CPU seconds meanwhile.
	FollowSeconds, FollowCPU float64
	CoordPeakMB              float64
	// NATSCPU and WorkersCPU are CPU seconds over the whole run.
	NATSCPU, NATSPeakMB       float64
	WorkersCPU, WorkersPeakMB float64
	// StatusMS is the best of three coordinator.Summary calls at the end
	// (what `coordinator status` does), ScanMS of three coordinator.Status
	// calls (every shard's state read); StatusCmdMS the wall time of a
	// `coordinator status` process.
	StatusMS, ScanMS, StatusCmdMS float64
}

// PublishRate is shards published per second.
func (r Result) PublishRate() float64 { return float64(r.Shards) / r.PublishSeconds }

// ShardsPerSecond and ImagesPerSecond are the throughput through the
// queue, from the start of publishing to the last shard done.
func (r Result) ShardsPerSecond() float64 { return float64(r.Shards) / r.RunSeconds }

// ImagesPerSecond is the image throughput through the queue.
func (r Result) ImagesPerSecond() float64 { return float64(r.Images) / r.RunSeconds }

// FollowCorePercent is the coordinator's CPU while following, in percent
// of one core.
func (r Result) FollowCorePercent() float64 { return 100 * r.FollowCPU / r.FollowSeconds }

// role is a running role process and its events.
type role struct {
	name   string
	cmd    *exec.Cmd
	events chan Event
	done   chan error
}

func startRole(ctx context.Context, cfg Config, name string, args ...string) (*role, error) {
	cmd := exec.CommandContext(ctx, cfg.Exe, append([]string{"scale-bench", "--role", name}, args...)...)
	cmd.Stderr = cfg.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("scale-bench %s: %w", name, err)
	}
	r := &role{name: name, cmd: cmd, events: make(chan Event, 16), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev Event
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				r.events <- ev
			}
		}
		close(r.events)
		r.done <- cmd.Wait()
	}()
	return r, nil
}

// wait returns the role's next event, which must be want.
func (r *role) wait(want string) (Event, error) {
	ev, ok := <-r.events
	if !ok {
		err := <-r.done
		r.done <- err
		return Event{}, fmt.Errorf("scale-bench %s exited before %q: %v", r.name, want, err)
	}
	if ev.Event != want {
		return ev, fmt.Errorf("scale-bench %s: event %q, want %q", r.name, ev.Event, want)
	}
	return ev, nil
}

// stop sends SIGTERM and returns the role's last event.
func (r *role) stop() (Event, error) {
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	ev, err := r.wait("stopped")
	<-r.done
	return ev, err
}

// Plan lists synth://n and cuts it into shards without publishing, and
// returns the shard count.
func Plan(ctx context.Context, n, shardSize int) (int, error) {
	store, err := synth.OpenStore(fmt.Sprintf("%s%d", synth.StoreScheme, n))
	if err != nil {
		return 0, err
	}
	cut, err := sharding.NewCutter(shardSize, func(sharding.Shard) error { return nil })
	if err != nil {
		return 0, err
	}
	keep := sharding.Filter{}.Keep
	err = sharding.StoreInput{Store: store}.List(ctx, func(item sharding.Item) error {
		if !keep(item) {
			return nil
		}
		return cut.Add(item)
	})
	if err == nil {
		err = cut.Close()
	}
	return cut.Shards(), err
}

// Run runs the benchmark once.
func Run(ctx context.Context, cfg Config) (Result, error) {
	res := Result{Images: cfg.Images}
	start := time.Now()
	if _, err := Plan(ctx, cfg.Images, cfg.ShardSize); err != nil {
		return res, err
	}
	res.PlanSeconds = time.Since(start).Seconds()

	port, err := freePort()
	if err != nil {
		return res, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	nats, err := startRole(ctx, cfg, "nats", "--store-dir", filepath.Join(cfg.Dir, "nats"), "--port", strconv.Itoa(port))
	if err != nil {
		return res, err
	}
	ready, err := nats.wait("ready")
	if err != nil {
		return res, err
	}
	url := ready.URL
	common := []string{"--nats", url, "--job", "scale", "--images", strconv.Itoa(cfg.Images),
		"--shard-size", strconv.Itoa(cfg.ShardSize), "--workers", strconv.Itoa(cfg.Workers),
		"--batch-size", strconv.Itoa(cfg.BatchSize), "--concurrency", strconv.Itoa(cfg.Concurrency)}
	workers, err := startRole(ctx, cfg, "workers", common...)
	if err != nil {
		return res, err
	}
	if _, err := workers.wait("ready"); err != nil {
		return res, err
	}
	coord, err := startRole(ctx, cfg, "coordinator", common...)
	if err != nil {
		return res, err
	}
	published, err := coord.wait("published")
	if err != nil {
		return res, err
	}
	finished, err := coord.wait("finished")
	if err != nil {
		return res, err
	}
	if err := <-coord.done; err != nil {
		return res, fmt.Errorf("scale-bench coordinator: %w", err)
	}
	if finished.Rows != cfg.Images || finished.Shards != published.Shards {
		return res, fmt.Errorf("scale-bench: %d rows in %d shards, want %d in %d", finished.Rows, finished.Shards, cfg.Images, published.Shards)
	}
	res.Shards = published.Shards
	res.PublishSeconds = published.Seconds
	res.RunSeconds = published.Seconds + finished.Seconds
	res.FollowSeconds, res.FollowCPU = finished.Seconds, finished.CPU-published.CPU
	res.CoordPeakMB = finished.PeakMB

	if res.StatusMS, res.ScanMS, err = statusLatency(ctx, url, "scale"); err != nil {
		return res, err
	}
	cmdStart := time.Now()
	out, err := exec.CommandContext(ctx, cfg.Exe, "status", "scale", "--nats", url).CombinedOutput()
	if err != nil {
		return res, fmt.Errorf("coordinator status: %v\n%s", err, out)
	}
	res.StatusCmdMS = float64(time.Since(cmdStart).Microseconds()) / 1000

	wstop, err := workers.stop()
	if err != nil {
		return res, err
	}
	res.WorkersCPU, res.WorkersPeakMB = wstop.CPU, wstop.PeakMB
	nstop, err := nats.stop()
	if err != nil {
		return res, err
	}
	res.NATSCPU, res.NATSPeakMB = nstop.CPU, nstop.PeakMB
	return res, nil
}

// statusLatency returns the best of three coordinator.Summary and of
// three coordinator.Status calls, in milliseconds.
func statusLatency(ctx context.Context, url, job string) (summaryMS, scanMS float64, err error) {
	conn, err := node.Dial(ctx, url, "scale-bench-status", queue.Config{}, jobstate.Config{}, quiet())
	if err != nil {
		return 0, 0, err
	}
	defer conn.NC.Close()
	coord, err := coordinator.New(coordinator.Config{JS: conn.JS, Queue: conn.Queue, Jobs: conn.Jobs, OpenStore: openSynth, Log: quiet()})
	if err != nil {
		return 0, 0, err
	}
	best := func(status func(context.Context, string) (coordinator.Status, error)) (float64, error) {
		ms := 0.0
		for i := range 3 {
			start := time.Now()
			st, err := status(ctx, job)
			if err != nil {
				return 0, err
			}
			if !st.Complete() {
				return 0, errors.New("scale-bench: status of the finished job is not complete")
			}
			if d := float64(time.Since(start).Microseconds()) / 1000; i == 0 || d < ms {
				ms = d
			}
		}
		return ms, nil
	}
	if summaryMS, err = best(coord.Summary); err != nil {
		return 0, 0, err
	}
	scanMS, err = best(coord.Status)
	return summaryMS, scanMS, err
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// TempDir makes a work folder for Run.
func TempDir() (string, error) { return os.MkdirTemp("", "blipflow-scale-bench") }
