package main

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"blipflow/internal/fixtures"
	"blipflow/model/generate"
	"blipflow/pipeline/blip2model"
)

func TestBatchingFlagsChooseTheModel(t *testing.T) {
	ref := fixtures.Path("opt-tiny", "model")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		args       []string
		continuous bool
	}{
		{[]string{"--device", "cpu"}, false},                       // auto: plain batches on the CPU
		{[]string{"--continuous", "on", "--max-batch", "4"}, true}, // asked for
		{[]string{"--continuous", "off"}, false},
	} {
		fs := flag.NewFlagSet("run", flag.ContinueOnError)
		rt := runtimeFlags(fs)
		var bf batchingFlags
		bf.register(fs)
		if err := fs.Parse(append(tc.args, "--backend", "go", "--dtype", "fp32")); err != nil {
			t.Fatal(err)
		}
		reg := prometheus.NewRegistry()
		load, err := bf.loader(rt, generate.Config{}, reg, log)
		if err != nil {
			t.Fatal(err)
		}
		m, err := load(context.Background(), ref)
		if err != nil {
			t.Fatal(err)
		}
		_, isContinuous := m.(*blip2model.Continuous)
		if isContinuous != tc.continuous {
			t.Errorf("%v: model %T", tc.args, m)
		}
		fams, _ := reg.Gather()
		hasDevice := false
		for _, f := range fams {
			hasDevice = hasDevice || strings.HasPrefix(f.GetName(), "blipflow_device_")
		}
		if hasDevice != tc.continuous {
			t.Errorf("%v: device metrics registered = %v", tc.args, hasDevice)
		}
		m.(io.Closer).Close()
	}
	var bf batchingFlags
	bf.register(flag.NewFlagSet("x", flag.ContinueOnError))
	bf.mode = "sometimes"
	if _, err := bf.loader(runtimeFlags(flag.NewFlagSet("y", flag.ContinueOnError)), generate.Config{}, prometheus.NewRegistry(), log); err == nil {
		t.Fatal("--continuous sometimes accepted")
	}
}

func TestRunWithCUDAOnAMachineWithoutGPUFailsInOneLine(t *testing.T) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	rt := runtimeFlags(fs)
	var bf batchingFlags
	bf.register(fs)
	if err := fs.Parse([]string{"--device", "cuda"}); err != nil {
		t.Fatal(err)
	}
	load, err := bf.loader(rt, generate.Config{}, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = load(context.Background(), fixtures.Path("opt-tiny", "model"))
	if err == nil {
		t.Skip("hardware: this machine has a GPU")
	}
	if !strings.HasPrefix(err.Error(), "--device cuda: ") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("error %q is not one line naming the device", err)
	}
}
