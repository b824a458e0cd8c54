package bf16

import (
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"blipflow/model/blas"
)

// benchShapes are the products of blip2-opt-2.7b: the ViT-g vision encoder
// over one image's 257 tokens (qkv 1408→4224, MLP 1408→6144→1408), OPT-2.7b
// prefill of 42 tokens (2560→2560, 2560→10240), and decode steps at batch
// 1, 8 and 32 through the MLP (2560→10240→2560) and the 2560→50272 head.
var benchShapes = []struct {
	name    string
	m, k, n int
}{
	{"vit-qkv", 257, 1408, 4224},
	{"vit-fc1", 257, 1408, 6144},
	{"vit-fc2", 257, 6144, 1408},
	{"prefill-attn", 42, 2560, 2560},
	{"prefill-fc1", 42, 2560, 10240},
	{"decode1-fc1", 1, 2560, 10240},
	{"decode1-fc2", 1, 10240, 2560},
	{"decode1-head", 1, 2560, 50272},
	{"decode8-fc1", 8, 2560, 10240},
	{"decode8-fc2", 8, 10240, 2560},
	{"decode8-head", 8, 2560, 50272},
	{"decode32-fc1", 32, 2560, 10240},
	{"decode32-fc2", 32, 10240, 2560},
	{"decode32-head", 32, 2560, 50272},
}

// copiesFor is how many copies of a weight matrix of the given bytes the
// benchmarks cycle through: 256 MB or more in all, at most 8.
func copiesFor(bytes int) int {
	return min(8, (256<<20+bytes-1)/bytes)
}

// openblasNs holds OpenBLAS's time per product of each shape, measured by
// the openblas-fp32 sub-benchmark, for the speed-up the others report.
var openblasNs sync.Map

// benchFill fills s with a cheap deterministic pattern of small values.
func benchFill(s []float32, seed uint32) {
	v := seed | 1
	for i := range s {
		v = v*1664525 + 1013904223
		s[i] = float32(int32(v>>8)%2001-1000) / 16000
	}
}

// timeCalls runs f in b.Loop and returns the fastest call: the machine is
// shared, and other processes only ever make a call slower, so the rates
// reported come from the fastest call (ns/op stays the mean).
//
// It also returns cpu, the process's CPU time per call over two threads,
// which other processes do not inflate (but threads that spin while they
// wait, as OpenBLAS's do, do).
func timeCalls(b *testing.B, f func()) (best, cpu time.Duration) {
	f() // create primitives and pack outside the timing
	best = time.Duration(1 << 62)
	cpu0 := cpuTime()
	for b.Loop() {
		t0 := time.Now()
		f()
		best = min(best, time.Since(t0))
	}
	return best, (cpuTime() - cpu0) / 2 / time.Duration(b.N)
}

// cpuTime is the CPU time the process has used (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportRates reports the rates of the fastest call (GFLOP/s, GB/s of
// weights), and cpu-GFLOP/s, the rate per CPU time of two threads.
func reportRates(b *testing.B, name string, best, cpu time.Duration, m, k, n, weightBytes int) {
	ns := float64(best.Nanoseconds())
	b.ReportMetric(ns/1e6, "best-ms")
	b.ReportMetric(float64(cpu.Nanoseconds())/1e6, "cpu-ms")
	if cpu > 0 {
		b.ReportMetric(2*float64(m*k*n)/float64(cpu.Nanoseconds()), "cpu-GFLOP/s")
	}
	b.ReportMetric(2*float64(m*k*n)/ns, "GFLOP/s")
	b.ReportMetric(float64(n*k*weightBytes)/ns, "GB/s")
	if ref, ok := openblasNs.Load(name); ok && weightBytes == 2 {
		b.ReportMetric(ref.(float64)/ns, "x_openblas")
	}
}

// BenchmarkMulT times each engine at the model's shapes beside OpenBLAS
// sgemm (sgemv for m = 1) on the same fp32 shape: x_openblas is OpenBLAS's
// time over the engine's, GB/s counts the weights' bytes (bf16 or fp32).
// Run it with `flock /tmp/bigmem.lock go test -run '^$' -bench MulT ./model/bf16`
// (it needs about 1.5 GB).
func BenchmarkMulT(b *testing.B) {
	ob, obErr := blas.LoadOpenBLAS(blas.Options{Threads: 2})
	engines := []struct {
		name string
		load func() (Engine, error)
	}{
		{"go", func() (Engine, error) { return NewGoEngine(2), nil }},
		{"onednn", func() (Engine, error) { return loadOneDNN(Options{Threads: 2, SmallRows: -1}) }},
		{"auto", func() (Engine, error) { e, _, err := Load(Options{Threads: 2}); return e, err }},
	}
	for _, s := range benchShapes {
		b.Run(s.name, func(b *testing.B) {
			x := make([]float32, s.m*s.k)
			benchFill(x, 1)
			out := make([]float32, s.m*s.n)
			// Each call reads the next of several copies of the weights,
			// 256 MB or more in all, so that they come from memory and not
			// from the 32 MB L3 cache, as a model's weights would.
			wf := make([][]float32, copiesFor(4*s.n*s.k))
			for i := range wf {
				wf[i] = make([]float32, s.n*s.k)
				benchFill(wf[i], uint32(2+i))
			}
			b.Run("openblas-fp32", func(b *testing.B) {
				if obErr != nil {
					b.Skipf("OpenBLAS: %v", obErr)
				}
				i := 0
				best, cpu := timeCalls(b, func() {
					i = (i + 1) % len(wf)
					ob.Sgemm(false, true, s.m, s.n, s.k, 1, x, s.k, wf[i], s.k, 0, out, s.n)
				})
				openblasNs.Store(s.name, float64(best.Nanoseconds()))
				reportRates(b, s.name, best, cpu, s.m, s.k, s.n, 4)
			})
			ws := make([]*Matrix, copiesFor(2*s.n*s.k))
			for i := range ws {
				ws[i] = FromFloat32Matrix(s.n, s.k, wf[i%len(wf)])
				ws[i].Pack()
			}
			wf = nil
			for _, eng := range engines {
				b.Run(eng.name, func(b *testing.B) {
					e, err := eng.load()
					if err != nil {
						b.Skipf("%s: %v", eng.name, err)
					}
					for _, w := range ws {
						e.MulT(x, s.m, w, nil, out) // primitives, reordered copies
					}
					i := 0
					best, cpu := timeCalls(b, func() {
						i = (i + 1) % len(ws)
						e.MulT(x, s.m, ws[i], nil, out)
					})
					reportRates(b, s.name, best, cpu, s.m, s.k, s.n, 2)
				})
			}
		})
	}
}

// BenchmarkCrossover times the Go kernels and oneDNN at the decode MLP
// shapes for m = 1..64, to place DefaultSmallRows.
func BenchmarkCrossover(b *testing.B) {
	dn, err := loadOneDNN(Options{Threads: 2, SmallRows: -1})
	if err != nil {
		b.Skipf("oneDNN: %v", err)
	}
	g := NewGoEngine(2)
	for _, kn := range [][2]int{{2560, 10240}, {10240, 2560}, {1408, 6144}} {
		k, n := kn[0], kn[1]
		wf := make([]float32, n*k)
		benchFill(wf, 3)
		w := FromFloat32Matrix(n, k, wf)
		w.Pack()
		for _, m := range []int{1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 257} {
			x := make([]float32, m*k)
			benchFill(x, 4)
			out := make([]float32, m*n)
			for _, e := range []struct {
				name string
				e    Engine
			}{{"go", g}, {"onednn", dn}} {
				b.Run(fmt.Sprintf("%dx%d/m=%d/%s", k, n, m, e.name), func(b *testing.B) {
					best, cpu := timeCalls(b, func() { e.e.MulT(x, m, w, nil, out) })
					reportRates(b, "", best, cpu, m, k, n, 2)
				})
			}
		}
	}
}

// BenchmarkPack times packing a 10240×2560 matrix (a decoder MLP weight);
// GB/s counts the bf16 bytes packed.
func BenchmarkPack(b *testing.B) {
	const n, k = 10240, 2560
	data := make([]uint16, n*k)
	for i := range data {
		data[i] = uint16(i)
	}
	for b.Loop() {
		pack(data, n, k)
	}
	b.ReportMetric(float64(2*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
}
