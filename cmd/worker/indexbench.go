package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"blipflow/index"
	"blipflow/model/blas"
	"blipflow/model/search"
	"blipflow/schemas"
)

func init() {
	commands["index-bench"] = command{summary: "measure the index on synthetic clustered embeddings: build time, size, recall@10, latency", run: runIndexBench}
}

// runIndexBench builds an index over synthetic multi-vector embeddings (a
// Gaussian mixture shaped like BLIP-2's ITC embeddings, generated on the
// fly) and measures it against the exact scan.
func runIndexBench(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("index-bench", flag.ContinueOnError)
	images := fs.Int("images", 100_000, "images to index")
	vectors := fs.Int("vectors", 32, "vectors per image")
	dim := fs.Int("dim", 256, "floats per vector")
	topics := fs.Int("topics", 1000, "components of the Gaussian mixture")
	queries := fs.Int("queries", 1000, "held-out text-like queries")
	imageQueries := fs.Int("image-queries", 100, "held-out images searched with all their vectors (image-to-image, default probe)")
	k := fs.Int("k", 10, "results per query (recall@k)")
	probes := fs.String("probe", "8,16,32,48,64", "lists scanned per query vector, one row each")
	rerank := fs.Int("rerank", index.DefaultRerank, "candidates re-ranked exactly")
	tableRows := fs.Int("table-rows", 8192, "also time the exact scan of a Parquet table of this many rows (0: skip)")
	dir := fs.String("dir", "", "folder for the index and table (default: a temporary folder, removed afterwards)")
	reuse := fs.Bool("reuse", false, "reuse the index a previous run with the same --dir and data flags left there")
	var p index.Params
	fs.IntVar(&p.Lists, "lists", 0, "inverted lists (default: about the square root of the number of vectors)")
	fs.IntVar(&p.SubVectors, "sub-vectors", 0, "product-quantiser bytes per vector (default: dim/8)")
	fs.Uint64Var(&p.Seed, "seed", 1, "seed of the data and the build")
	if _, err := parseArgs(fs, args, stdout, "worker index-bench [--images N] [--queries Q] [--probe P,...] [--rerank R] [--table-rows N]"); err != nil {
		return err
	}
	var probeList []int
	for _, s := range strings.Split(*probes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("--probe %q: want positive integers separated by commas", *probes)
		}
		probeList = append(probeList, n)
	}
	if *images < 1 || *queries < 1 || *k < 1 {
		return errors.New("--images, --queries and --k must be positive")
	}
	if *dir == "" {
		tmp, err := os.MkdirTemp("", "index-bench")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		*dir = tmp
	} else if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	bk, warn, err := blas.Default()
	if err != nil {
		return err
	}
	if warn != "" {
		fmt.Fprintln(os.Stderr, warn)
	}
	fmt.Fprintf(stdout, "machine: GOMAXPROCS=%d, BLAS %s\n", runtime.GOMAXPROCS(0), bk.Name())
	fmt.Fprintf(stdout, "data: %d images × %d vectors × %d floats, mixture of %d topics; %d held-out queries\n", *images, *vectors, *dim, *topics, *queries)

	syn := index.NewSynth(*vectors, *dim, *topics, p.Seed)
	path := filepath.Join(*dir, "bench.bfi")
	meta := index.Meta{Model: "synthetic", Fingerprint: "synthetic", Kind: "itc_image", Vectors: *vectors, Dim: *dim, Normalized: true}
	var build time.Duration
	if _, err := os.Stat(path); !*reuse || err != nil {
		if build, err = buildSynth(ctx, syn, path, meta, p, *images); err != nil {
			return err
		}
	}
	ix, err := index.Open(path)
	if err != nil {
		return err
	}
	defer ix.Close()
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	h := ix.Header()
	full := int64(*images) * int64(*vectors**dim*4+4)
	if ix.Len() != *images || h.Vectors != *vectors || h.Dim != *dim {
		return fmt.Errorf("--reuse: %s holds %d images of %d×%d", path, ix.Len(), h.Vectors, h.Dim)
	}
	if build > 0 {
		fmt.Fprintf(stdout, "build: %s (data generation excluded), %d lists, %d-byte PQ codes\n", build.Round(time.Millisecond), h.Lists, h.SubVectors)
	} else {
		fmt.Fprintf(stdout, "build: reused %s, %d lists, %d-byte PQ codes\n", path, h.Lists, h.SubVectors)
	}
	fmt.Fprintf(stdout, "size: %.0f bytes/image for the index (lists: ids and codes; centroids, codebooks, keys), plus %d bytes/image of full vectors for the exact re-rank (file %.2f GB)\n",
		float64(st.Size()-full)/float64(*images), *vectors**dim*4+4, float64(st.Size())/1e9)

	qs := make([][]float32, *queries)
	for i := range qs {
		qs[i] = make([]float32, *dim)
		syn.Query(i, qs[i])
	}
	t0 := time.Now()
	truth, err := exactTop(bk, ix, qs, *k)
	if err != nil {
		return err
	}
	exactTime := time.Since(t0)
	fmt.Fprintf(stdout, "exact scan of the index's full vectors (BLAS, all queries at once): %s, %.0f images/s per query\n",
		exactTime.Round(time.Millisecond), float64(*images)*float64(*queries)/exactTime.Seconds())

	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "probe\trerank\trecall@%d\tp50 ms\tp99 ms\tmean ms\tcpu p50 ms\tcpu p99 ms\t\n", *k)
	runtime.LockOSThread() // so that the thread's CPU clock times the queries
	defer runtime.UnlockOSThread()
	for _, probe := range probeList {
		lat := make([]time.Duration, len(qs))
		cpu := make([]time.Duration, len(qs))
		found := 0
		for i, q := range qs {
			c0 := threadCPU()
			t := time.Now()
			hits, err := ix.Search([][]float32{q}, *k, index.SearchOptions{Probe: probe, Rerank: *rerank})
			lat[i] = time.Since(t)
			cpu[i] = threadCPU() - c0
			if err != nil {
				return err
			}
			for _, hit := range hits {
				if slices.Contains(truth[i], hit.Row) {
					found++
				}
			}
		}
		slices.Sort(lat)
		slices.Sort(cpu)
		var sum time.Duration
		for _, l := range lat {
			sum += l
		}
		ms := func(d time.Duration) string { return fmt.Sprintf("%.2f", d.Seconds()*1000) }
		p99 := min(len(lat)-1, len(lat)*99/100)
		fmt.Fprintf(tw, "%d\t%d\t%.3f\t%s\t%s\t%s\t%s\t%s\t\n", probe, *rerank, float64(found)/float64(len(qs)**k),
			ms(lat[len(lat)/2]), ms(lat[p99]), ms(sum/time.Duration(len(lat))), ms(cpu[len(cpu)/2]), ms(cpu[p99]))
	}
	tw.Flush()

	if *imageQueries > 0 {
		recall, wall, cpu, err := benchImageQueries(bk, ix, syn, *imageQueries, *k, *rerank)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "image-to-image (%d held-out images, %d vectors each, probe %d): recall@%d %.3f, p50 %.2f ms, p99 %.2f ms, cpu p99 %.2f ms\n",
			*imageQueries, *vectors, index.DefaultProbe, *k, recall, wall[0], wall[1], cpu[1])
	}

	if *tableRows > 0 {
		rate, err := tableScanRate(syn, *tableRows, *dir, qs[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "exact scan of a Parquet table (%d rows, 'search --table'): %.0f rows/s\n", *tableRows, rate)
	}
	return nil
}

// exactTop ranks every image of the index for each query exactly (best
// dot product over the image's vectors) and returns the image numbers of
// each query's top k.
func exactTop(bk blas.Backend, ix *index.Index, qs [][]float32, k int) ([][]int64, error) {
	h := ix.Header()
	d, v := h.Dim, h.Vectors
	nq := len(qs)
	qmat := make([]float32, 0, nq*d)
	for _, q := range qs {
		qmat = append(qmat, q...)
	}
	tops := make([]*search.TopK, nq)
	for i := range tops {
		tops[i] = search.NewTopK(k)
	}
	const block = 256
	c := make([]float32, block*v*nq)
	for lo := 0; lo < ix.Len(); lo += block {
		n := min(block, ix.Len()-lo)
		a, err := ix.RangeVectors(lo, n)
		if err != nil {
			return nil, err
		}
		bk.Sgemm(false, true, n*v, nq, d, 1, a, d, qmat, d, 0, c, nq)
		for i := range n {
			for q := range nq {
				best := float32(math.Inf(-1))
				for j := range v {
					best = max(best, c[(i*v+j)*nq+q])
				}
				tops[q].Offer(search.Hit{Score: best, Row: int64(lo + i)})
			}
		}
	}
	out := make([][]int64, nq)
	for q, t := range tops {
		for _, hit := range t.Hits() {
			out[q] = append(out[q], hit.Row)
		}
	}
	return out, nil
}

// tableScanRate writes rows synthetic images as a Parquet embeddings table
// and times the exact scan of it, as 'worker search --table' does.
func tableScanRate(syn *index.Synth, rows int, dir string, q []float32) (float64, error) {
	keys := make([]string, rows)
	vecs := make([][]float32, rows)
	for i := range vecs {
		keys[i] = fmt.Sprintf("img%08d.jpg", i)
		vecs[i] = make([]float32, syn.Vectors*syn.Dim)
		syn.Image(i, vecs[i])
	}
	var buf bytes.Buffer
	meta := schemas.Meta{Model: "synthetic", EmbeddingKind: "itc_image", EmbeddingVectors: syn.Vectors, EmbeddingDim: syn.Dim, Normalized: true}
	if err := schemas.WriteEmbeddings(&buf, meta, keys, vecs); err != nil {
		return 0, err
	}
	vecs = nil
	path := filepath.Join(dir, "bench.parquet")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return 0, err
	}
	buf = bytes.Buffer{}
	runtime.GC()
	best := math.Inf(1)
	for range 3 {
		t0 := time.Now()
		if _, err := search.Tables([]string{path}, [][]float32{q}, 10, nil); err != nil {
			return 0, err
		}
		best = min(best, time.Since(t0).Seconds())
	}
	return float64(rows) / best, nil
}

// buildSynth builds the benchmark's index of n synthetic images and
// returns the build time without the data generation.
func buildSynth(ctx context.Context, syn *index.Synth, path string, meta index.Meta, p index.Params, n int) (time.Duration, error) {
	start := time.Now()
	b, err := index.Create(path, meta, p)
	if err != nil {
		return 0, err
	}
	var genTime time.Duration
	img := make([]float32, syn.Vectors*syn.Dim)
	for i := range n {
		if i%1024 == 0 && ctx.Err() != nil {
			b.Abort()
			return 0, ctx.Err()
		}
		t0 := time.Now()
		syn.Image(i, img)
		genTime += time.Since(t0)
		if err := b.Add(fmt.Sprintf("img%08d.jpg", i), index.Info{}, img); err != nil {
			b.Abort()
			return 0, err
		}
	}
	if err := b.Close(); err != nil {
		return 0, err
	}
	return time.Since(start) - genTime, nil
}

// threadCPU is the CPU time of the calling OS thread.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// benchImageQueries searches with held-out images (all their vectors) and
// returns recall@k against the exact ranking (best product over all pairs
// of vectors) and the p50 and p99 wall and thread CPU times in ms. The
// exact top k of an image query is among the union of the exact top k of
// its vectors, which exactTop gives.
func benchImageQueries(bk blas.Backend, ix *index.Index, syn *index.Synth, n, k, rerank int) (float64, [2]float64, [2]float64, error) {
	h := ix.Header()
	var lat, cpu []time.Duration
	found := 0
	for i := range n {
		img := make([]float32, h.Vectors*h.Dim)
		syn.Image(-1_000_000-i, img)
		query := make([][]float32, h.Vectors)
		for v := range query {
			query[v] = img[v*h.Dim : (v+1)*h.Dim]
		}
		per, err := exactTop(bk, ix, query, k)
		if err != nil {
			return 0, [2]float64{}, [2]float64{}, err
		}
		top := search.NewTopK(k)
		seen := map[int64]bool{}
		for _, rows := range per {
			for _, r := range rows {
				if seen[r] {
					continue
				}
				seen[r] = true
				vec, err := ix.ImageVectors(int(r))
				if err != nil {
					return 0, [2]float64{}, [2]float64{}, err
				}
				best := float32(math.Inf(-1))
				for _, q := range query {
					best = max(best, search.MaxDot(vec, q))
				}
				top.Offer(search.Hit{Score: best, Row: r})
			}
		}
		c0 := threadCPU()
		t := time.Now()
		hits, err := ix.Search(query, k, index.SearchOptions{Rerank: rerank})
		lat = append(lat, time.Since(t))
		cpu = append(cpu, threadCPU()-c0)
		if err != nil {
			return 0, [2]float64{}, [2]float64{}, err
		}
		for _, want := range top.Hits() {
			if slices.ContainsFunc(hits, func(h search.Hit) bool { return h.Row == want.Row }) {
				found++
			}
		}
	}
	pct := func(d []time.Duration) [2]float64 {
		slices.Sort(d)
		return [2]float64{d[len(d)/2].Seconds() * 1000, d[min(len(d)-1, len(d)*99/100)].Seconds() * 1000}
	}
	return float64(found) / float64(n*k), pct(lat), pct(cpu), nil
}
