package node

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"blipflow/pipeline/jobstate"
	"blipflow/pipeline/queue"
)

// DialNow connects to the NATS at rawURL for a one-shot command (status,
// wait, report, retry): unlike Dial it does not wait for a server that is
// not there. A server that cannot be reached fails within timeout with the
// network's reason (connection refused, no such host) and the URL.
func DialNow(ctx context.Context, rawURL, name string, qcfg queue.Config, jcfg jobstate.Config, timeout time.Duration, log *slog.Logger) (*Conn, error) {
	if err := probe(ctx, rawURL, timeout); err != nil {
		return nil, err
	}
	nc, err := queue.Connect(rawURL, name, log, nats.RetryOnFailedConnect(false), nats.Timeout(timeout))
	if err != nil {
		return nil, fmt.Errorf("cannot reach NATS at %s: %w", rawURL, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream on %s: %w", rawURL, err)
	}
	c, err := setup(ctx, nc, js, qcfg, jcfg)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats %s: %w", rawURL, err)
	}
	return c, nil
}

// probe opens a TCP connection to the first server of a NATS URL list.
func probe(ctx context.Context, rawURL string, timeout time.Duration) error {
	first, _, _ := strings.Cut(rawURL, ",")
	first = strings.TrimSpace(first)
	if !strings.Contains(first, "://") {
		first = "nats://" + first
	}
	u, err := url.Parse(first)
	if err != nil {
		return fmt.Errorf("NATS URL %q: %w", rawURL, err)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "4222")
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return fmt.Errorf("cannot reach NATS at %s: %w (start a server, pass --nats URL, or use --local for a local job)", rawURL, err)
	}
	return conn.Close()
}
