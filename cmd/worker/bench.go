package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"blipflow/model/blas"
	"blipflow/model/blip2"
	"blipflow/model/nn"
)

func init() {
	commands["bench"] = command{summary: "time the model at a real checkpoint's shape with random weights", run: runBench}
}

func runBench(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	shape := fs.String("shape", "blip2-opt-2.7b", "released checkpoint whose shape to build (blip2-opt-2.7b, blip2-opt-6.7b, blip2-flan-t5-xl)")
	modelDir := fs.String("model", "", "time this checkpoint folder instead of a random model")
	rt := runtimeFlags(fs)
	batches := fs.String("decode-batch", "1,8,32", "batch sizes of the timed decode step")
	promptLen := fs.Int("prompt-len", 10, "text tokens after the queries in the timed prefill")
	repeats := fs.Int("repeats", 2, "report the best of this many runs")
	visionLayers := fs.Int("vision-layers", 0, "override the number of vision layers (0: the shape's)")
	textLayers := fs.Int("text-layers", 0, "override the number of language model layers (0: the shape's)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the timed stages to this file")
	captions := fs.String("caption-batch", "", "also time captioning end to end at these batch sizes, e.g. 1,8,32,128,max (max: the largest that fits on a GPU)")
	newTokens := fs.Int("new-tokens", 20, "tokens generated per image by --caption-batch")
	opTimes := fs.Bool("op-times", false, "also print the wall time per run of each kind of op in each stage (CPU)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	capSizes, capMax, err := captionBatches(*captions)
	if err != nil {
		return err
	}
	ops, err := openOps(rt)
	if err != nil {
		return err
	}
	var b blas.Backend = blas.Gonum{}
	var times *nn.OpTimes
	if cpu, ok := ops.(*nn.CPU); ok {
		b = cpu.BLAS
		if *opTimes {
			times = nn.NewOpTimes()
			cpu.Times = times
		}
	}
	// The machine's rates are measured before the model is built, so their
	// buffers do not add to the peak memory reported, and on every core
	// (the ops run OpenBLAS single-threaded and spread products themselves).
	restoreThreads := func() {}
	if ob, ok := b.(*blas.OpenBLAS); ok {
		threads := ob.Threads()
		ob.SetThreads(runtime.GOMAXPROCS(0))
		restoreThreads = func() { ob.SetThreads(threads) }
	}
	gemm, bandwidth := blas.MeasureGFLOPS(b, 2048), measureBandwidth(b)
	restoreThreads()
	var m *blip2.Model
	var label string
	start := time.Now()
	if *modelDir != "" {
		if m, err = blip2.Load(*modelDir, ops); err != nil {
			return err
		}
		label = *modelDir
	} else {
		cfg, err := blip2.Shape(*shape)
		if err != nil {
			return err
		}
		if *visionLayers > 0 {
			cfg.Vision.NumHiddenLayers = *visionLayers
		}
		if *textLayers > 0 {
			cfg.Text.NumHiddenLayers, cfg.Text.NumLayers = *textLayers, *textLayers
			cfg.Text.NumDecoderLayers = textLayers
		}
		src := nn.NewRandomSource(1, 0.02)
		src.Absent = map[string]bool{"language_model.lm_head.weight": true} // tied, as in the release
		for i := 0; i < cfg.QFormer.NumHiddenLayers; i++ {                  // retrieval-only text feed-forward
			src.Absent[fmt.Sprintf("qformer.encoder.layer.%d.intermediate.dense.weight", i)] = true
		}
		if m, err = blip2.New(cfg, src, ops); err != nil {
			return err
		}
		label = *shape + " (random weights)"
	}
	defer m.Close()
	loaded := time.Since(start)
	boundHeapGrowth()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	loadRSS := peakRSS()
	var sizes []int
	for _, s := range strings.Split(*batches, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return fmt.Errorf("--decode-batch: %q is not a positive integer", s)
		}
		sizes = append(sizes, n)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	timings, err := blip2.Measure(ctx, m, blip2.BenchOptions{PromptLen: *promptLen, DecodeBatch: sizes, Repeats: *repeats, OpTimes: times})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "model: %s, built in %s\nops: %s\nmachine: sgemm %.0f GFLOP/s (2048³), weights read by sgemv at %.1f GB/s\n\n", label, loaded.Round(time.Millisecond), ops.Name(), gemm, bandwidth)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "stage\tbatch\tms\tGFLOP\tGFLOP/s\t% of sgemm\tweights read (ms)\t")
	for _, t := range timings {
		read := "-"
		if t.WeightBytes > 0 {
			read = fmt.Sprintf("%.0f", t.WeightBytes/bandwidth/1e6)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%.1f\t%.0f%%\t%s\t\n", t.Stage, t.Batch, t.Seconds*1e3, t.FLOP/1e9, t.GFLOPS(), 100*t.GFLOPS()/gemm, read)
	}
	tw.Flush()
	if times != nil {
		printOpTimes(stdout, timings)
	}
	if len(capSizes) > 0 || capMax {
		_, onCPU := ops.(*nn.CPU)
		if err := benchCaptions(stdout, m, capSizes, capMax, *newTokens, *repeats, !onCPU); err != nil {
			return err
		}
	}
	if rss := peakRSS(); rss > 0 {
		fmt.Fprintf(stdout, "\npeak RSS %.2f GB (%s weights; %.2f GB on the heap after loading, peak RSS %.2f GB by then)\n", rss/1e9, ops.WeightDType(), float64(ms.HeapAlloc)/1e9, loadRSS/1e9)
	}
	return nil
}

// measureBandwidth returns the rate (GB/s) at which a matrix-vector product
// reads a 256 MiB matrix: the floor for a decode step, which reads every
// weight once.
func measureBandwidth(b blas.Backend) float64 {
	const rows, cols = 16384, 4096
	a := make([]float32, rows*cols)
	for i := range a {
		a[i] = float32(i%7) * 0.01
	}
	x, y := make([]float32, cols), make([]float32, rows)
	best := 0.0
	for r := 0; r < 3; r++ {
		start := time.Now()
		b.Sgemv(false, rows, cols, 1, a, cols, x, 1, 0, y, 1)
		if gb := float64(4*len(a)) / time.Since(start).Seconds() / 1e9; gb > best {
			best = gb
		}
	}
	return best
}

// printOpTimes prints each stage's time per run by kind of op (--op-times):
// the ops' wall time, so the products' share shows beside everything else.
func printOpTimes(w io.Writer, timings []blip2.StageTiming) {
	fmt.Fprintln(w, "\ntime per run by kind of op (--op-times)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "stage\tbatch\top\tms\t% of stage\t")
	for _, t := range timings {
		for _, o := range t.Ops {
			ms := float64(o.Time) / 1e6
			fmt.Fprintf(tw, "%s\t%d\t%s\t%.1f\t%.0f%%\t\n", t.Stage, t.Batch, o.Kind, ms, 100*ms/(t.Seconds*1e3))
		}
	}
	tw.Flush()
}

// peakRSS reads the process's peak resident set size from /proc (0 if
// unavailable).
func peakRSS() float64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseFloat(f[1], 64)
				return kb * 1024
			}
		}
	}
	return 0
}
