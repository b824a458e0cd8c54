// Package node is the process-level wiring the coordinator and worker
// binaries share: flags with environment defaults, logging, the NATS
// connection with the queue and job state on top, and store opening.
package node

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"blipflow/internal/redact"
	"blipflow/internal/retry"
	"blipflow/pipeline/jobstate"
	"blipflow/pipeline/queue"
	"blipflow/storage"
)

// Flags are the settings both binaries take. Register binds them to a
// flag set with defaults from the environment.
type Flags struct {
	NATSURL     string
	MetricsAddr string
	LogFormat   string
	LogLevel    string
	Queue       queue.Config
	Jobs        jobstate.Config
	Storage     storage.Config
}

// Register adds the shared flags to fs. Defaults come from NATS_URL,
// BLIPFLOW_METRICS_ADDR, BLIPFLOW_LOG_FORMAT, BLIPFLOW_LOG_LEVEL,
// BLIPFLOW_ACK_WAIT, BLIPFLOW_MAX_DELIVER, BLIPFLOW_S3_* and the AWS
// variables (storage.ConfigFromEnv).
func (f *Flags) Register(fs *flag.FlagSet, metricsAddr string) {
	f.Storage = storage.ConfigFromEnv()
	fs.StringVar(&f.NATSURL, "nats", EnvString("NATS_URL", nats.DefaultURL), "NATS server URL, or a comma-separated list of the servers of a cluster (env NATS_URL)")
	fs.IntVar(&f.Queue.Replicas, "replicas", EnvInt("BLIPFLOW_REPLICAS", 0), "JetStream replicas of the streams and the job bucket, at most the cluster's size (0: keep existing ones, 1 for new) (env BLIPFLOW_REPLICAS)")
	fs.StringVar(&f.MetricsAddr, "metrics-addr", EnvString("BLIPFLOW_METRICS_ADDR", metricsAddr), "listen address of /metrics, /healthz and /readyz; empty disables (env BLIPFLOW_METRICS_ADDR)")
	fs.StringVar(&f.LogFormat, "log-format", EnvString("BLIPFLOW_LOG_FORMAT", "text"), "log format: text or json (env BLIPFLOW_LOG_FORMAT)")
	fs.StringVar(&f.LogLevel, "log-level", EnvString("BLIPFLOW_LOG_LEVEL", "info"), "log level: debug, info, warn or error (env BLIPFLOW_LOG_LEVEL)")
	fs.DurationVar(&f.Queue.AckWait, "ack-wait", EnvDuration("BLIPFLOW_ACK_WAIT", queue.DefaultAckWait), "time a shard may go without an ack or progress report before redelivery (env BLIPFLOW_ACK_WAIT)")
	fs.IntVar(&f.Queue.MaxDeliver, "max-deliver", EnvInt("BLIPFLOW_MAX_DELIVER", queue.DefaultMaxDeliver), "deliveries of a shard before it is dead-lettered (env BLIPFLOW_MAX_DELIVER)")
	fs.StringVar(&f.Storage.Endpoint, "s3-endpoint", f.Storage.Endpoint, "custom S3 endpoint URL (env BLIPFLOW_S3_ENDPOINT, AWS_ENDPOINT_URL_S3)")
	fs.StringVar(&f.Storage.Region, "s3-region", f.Storage.Region, "S3 region (env AWS_REGION)")
	fs.BoolVar(&f.Storage.PathStyle, "s3-path-style", f.Storage.PathStyle, "path-style S3 addressing, for S3-compatible stores (env BLIPFLOW_S3_PATH_STYLE)")
}

// Logger builds the process logger from the flags. Its records have URL
// credentials masked (redact.Handler).
func (f *Flags) Logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.LogLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", f.LogLevel, err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(f.LogFormat) {
	case "json":
		return slog.New(redact.Handler(slog.NewJSONHandler(w, opts))), nil
	case "text", "":
		return slog.New(redact.Handler(slog.NewTextHandler(w, opts))), nil
	default:
		return nil, fmt.Errorf("--log-format %q: want text or json", f.LogFormat)
	}
}

// OpenStore returns a store opener with the flags' S3 settings.
func (f *Flags) OpenStore() func(ctx context.Context, location string) (storage.Store, error) {
	cfg := f.Storage
	return func(ctx context.Context, location string) (storage.Store, error) {
		return storage.Open(ctx, location, cfg)
	}
}

// Conn is a NATS connection with the pipeline's queue and job state.
type Conn struct {
	NC    *nats.Conn
	JS    jetstream.JetStream
	Queue *queue.Queue
	Jobs  *jobstate.Store
}

// Dial connects to url (reconnecting for ever) and sets up the queue and
// job state, retrying until NATS answers or ctx ends. A refused
// authorization is not retried: it is returned at once as ErrNATSAuth.
func Dial(ctx context.Context, url, name string, qcfg queue.Config, jcfg jobstate.Config, log *slog.Logger) (*Conn, error) {
	shown := redact.URL(url)
	nc, err := queue.Connect(url, name, log)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream on %s: %w", shown, redact.Err(err))
	}
	if jcfg.Replicas == 0 {
		jcfg.Replicas = qcfg.Replicas
	}
	var c *Conn
	policy := retry.Policy{Initial: 200 * time.Millisecond, Max: 5 * time.Second}
	err = policy.Do(ctx, "nats "+shown, func() error {
		var err error
		if authErr := queue.AuthError(nc); authErr != nil {
			return retry.Permanent(fmt.Errorf("%w: %w", ErrNATSAuth, authErr))
		}
		c, err = setup(ctx, nc, js, qcfg, jcfg)
		if err != nil {
			if authErr := queue.AuthError(nc); authErr != nil {
				return retry.Permanent(fmt.Errorf("%w: %w", ErrNATSAuth, authErr))
			}
		}
		return redact.Err(err)
	}, func(err error, delay time.Duration) {
		log.Warn("nats not ready; retrying", "url", shown, "err", err, "delay", delay)
	})
	if err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// ErrNATSAuth reports that the NATS server refused the credentials.
var ErrNATSAuth = errors.New("nats authorization failed (check the user, password or token in --nats)")

func setup(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, qcfg queue.Config, jcfg jobstate.Config) (*Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	q, err := queue.Setup(ctx, js, qcfg)
	if err != nil {
		return nil, err
	}
	jobs, err := jobstate.Open(ctx, js, jcfg)
	if err != nil {
		return nil, err
	}
	return &Conn{NC: nc, JS: js, Queue: q, Jobs: jobs}, nil
}

// Close drains and closes the connection.
func (c *Conn) Close() {
	if err := c.NC.Drain(); err != nil {
		c.NC.Close()
	}
}

// EnvString returns the variable's value, or def when unset or empty.
func EnvString(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// EnvInt returns the variable as an integer, or def when unset or invalid.
func EnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// EnvDuration returns the variable as a duration ("30s"), or def when
// unset or invalid.
func EnvDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return v
	}
	return def
}
