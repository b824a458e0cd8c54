package metrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestServe(t *testing.T) {
	reg := prometheus.NewRegistry()
	w := NewWorker(reg)
	w.Images.WithLabelValues("ok").Add(3)
	var ready atomic.Bool
	srv, err := Serve("127.0.0.1:0", reg, func() error {
		if !ready.Load() {
			return errors.New("warming up")
		}
		return nil
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + srv.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d", code)
	}
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "warming up") {
		t.Errorf("/readyz before ready = %d %q", code, body)
	}
	ready.Store(true)
	if code, _ := get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz when ready = %d", code)
	}
	if code, body := get("/metrics"); code != http.StatusOK || !strings.Contains(body, `blipflow_worker_images_total{result="ok"} 3`) {
		t.Errorf("/metrics = %d, missing the images counter", code)
	}
}

func TestCoordinatorMetricsRegister(t *testing.T) {
	reg := prometheus.NewRegistry()
	NewCoordinator(reg)
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
}
