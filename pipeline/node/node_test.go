package node

import (
	"bytes"
	"context"
	"flag"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"blipflow/pipeline/jobstate"
	"blipflow/pipeline/queue"
)

func TestFlagsFromEnvironment(t *testing.T) {
	t.Setenv("NATS_URL", "nats://queue:4222")
	t.Setenv("BLIPFLOW_ACK_WAIT", "45s")
	t.Setenv("BLIPFLOW_MAX_DELIVER", "not a number")
	t.Setenv("BLIPFLOW_S3_ENDPOINT", "http://minio:9000")
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var f Flags
	f.Register(fs, ":9090")
	if err := fs.Parse([]string{"--max-deliver", "7", "--log-format", "json"}); err != nil {
		t.Fatal(err)
	}
	if f.NATSURL != "nats://queue:4222" || f.Queue.AckWait != 45*time.Second || f.Queue.MaxDeliver != 7 ||
		f.MetricsAddr != ":9090" || f.Storage.Endpoint != "http://minio:9000" || !f.Storage.PathStyle {
		t.Errorf("flags %+v", f)
	}
	var buf bytes.Buffer
	log, err := f.Logger(&buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hello", "k", 1)
	if !strings.HasPrefix(buf.String(), "{") || !strings.Contains(buf.String(), `"k":1`) {
		t.Errorf("json log line %q", buf.String())
	}
	f.LogFormat = "xml"
	if _, err := f.Logger(&buf); err == nil {
		t.Error("--log-format xml: no error")
	}
	f.LogFormat, f.LogLevel = "text", "loud"
	if _, err := f.Logger(&buf); err == nil {
		t.Error("--log-level loud: no error")
	}
}

// A one-shot command without a server fails at once with the network's
// reason and the URL, instead of waiting for the server.
func TestDialNowWithoutServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	url := "nats://" + addr
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = DialNow(ctx, url, "test", queue.Config{}, jobstate.Config{}, 2*time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), url) {
		t.Fatalf("error %v, want connection refused naming %s", err, url)
	}
	if ctx.Err() != nil {
		t.Fatal("DialNow waited for the context to end")
	}
}
