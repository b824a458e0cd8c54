package metrics

import (
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// gathered returns each sample of reg as "name{label=value,...}" -> value.
func gathered(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			key := f.GetName() + "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.Gauge != nil:
				out[key] = m.Gauge.GetValue()
			case m.Counter != nil:
				out[key] = m.Counter.GetValue()
			case m.Histogram != nil:
				out[key] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return out
}

func TestDeviceMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewDevice(reg, "cuda:0", func() (uint64, uint64, error) { return 30 << 30, 80 << 30, nil })
	m.ObserveStep(24, 32, 100, 7, 0)
	m.ObserveStep(32, 32, 90, 3, 1)
	m.ObserveStep(16, 16, 90, 3, 3)
	got := gathered(t, reg)
	for key, want := range map[string]float64{
		"blipflow_device_batch_capacity{device=cuda:0}":               16,
		"blipflow_device_batch_rows{device=cuda:0}":                   16,
		"blipflow_device_batch_occupancy{device=cuda:0}":              3,
		"blipflow_device_oom_shrinks_total{device=cuda:0}":            3,
		"blipflow_device_waiting_images{device=cuda:0,stage=queued}":  90,
		"blipflow_device_waiting_images{device=cuda:0,stage=encoded}": 3,
		"blipflow_device_memory_bytes{device=cuda:0,kind=free}":       30 << 30,
		"blipflow_device_memory_bytes{device=cuda:0,kind=used}":       50 << 30,
		"blipflow_device_memory_bytes{device=cuda:0,kind=total}":      80 << 30,
	} {
		if v, ok := got[key]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", key, v, ok, want)
		}
	}
}

func TestDeviceMemoryErrorFailsTheScrape(t *testing.T) {
	reg := prometheus.NewRegistry()
	NewDevice(reg, "cuda:0", func() (uint64, uint64, error) { return 0, 0, errors.New("cuMemGetInfo: CUDA_ERROR_DEINITIALIZED") })
	if _, err := reg.Gather(); err == nil || !strings.Contains(err.Error(), "CUDA_ERROR_DEINITIALIZED") {
		t.Fatalf("gather error = %v", err)
	}
	cpu := prometheus.NewRegistry()
	NewDevice(cpu, "cpu", nil)
	for key := range gathered(t, cpu) {
		if strings.HasPrefix(key, "blipflow_device_memory_bytes") {
			t.Fatalf("a device without a memory source reports %s", key)
		}
	}
}
