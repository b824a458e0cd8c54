package pipeline_test

import (
	"context"
	"testing"

	"blipflow/pipeline/bench"
)

// BenchmarkPlumbing measures images per second through the whole pipeline
// (list, queue, read, decode, preprocess, batch, write Parquet, ack) with
// the nop model, on 500 generated 256×256 PNGs per iteration.
func BenchmarkPlumbing(b *testing.B) {
	ctx := context.Background()
	cfg := bench.Config{Dir: b.TempDir(), Images: 500}
	if err := bench.Prepare(ctx, cfg); err != nil {
		b.Fatal(err)
	}
	images, seconds := 0, 0.0
	run := 0
	for b.Loop() {
		res, err := bench.Run(ctx, cfg, run)
		if err != nil {
			b.Fatal(err)
		}
		run++
		images += res.Images
		seconds += res.Elapsed.Seconds()
	}
	b.ReportMetric(float64(images)/seconds, "images/s")
}
