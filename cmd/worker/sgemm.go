package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"blipflow/model/blas"
)

func init() {
	commands["sgemm-bench"] = command{
		summary: "measure this machine's single-precision matrix product rate (GFLOP/s)",
		run:     runSgemmBench,
	}
}

// runSgemmBench loads a BLAS backend and prints its square sgemm rate.
func runSgemmBench(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("sgemm-bench", flag.ContinueOnError)
	backend := fs.String("backend", "", "BLAS backend: auto, go or openblas (default $"+blas.EnvBackend+", else auto)")
	size := fs.Int("size", 0, "measure one N×N×N product of this size instead of N=1024 and N=2048")
	threads := fs.Int("threads", 0, "OpenBLAS threads (0: library default)")
	library := fs.String("library", "", "OpenBLAS shared library path (default: search the usual places)")
	coreType := fs.String("coretype", "", "OpenBLAS kernel to force, e.g. SkylakeX or Haswell; \""+blas.CoreTypeLibrary+"\" keeps OpenBLAS's own CPU detection (default: from CPU features unless $"+blas.EnvCoreType+" is set)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	sizes := []int{1024, 2048}
	if *size != 0 {
		if *size < 1 {
			return fmt.Errorf("--size %d: want a positive matrix size", *size)
		}
		sizes = []int{*size}
	}

	b, warning, err := blas.Load(blas.Options{
		Backend:     blas.Kind(*backend),
		LibraryPath: *library,
		Threads:     *threads,
		CoreType:    *coreType,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backend: %s\n", b.Name())
	if ob, ok := b.(*blas.OpenBLAS); ok {
		fmt.Fprintf(stdout, "config:  %s\n", ob.Config())
	}
	if warning != "" {
		fmt.Fprintf(stdout, "warning: %s\n", warning)
	}
	for _, n := range sizes {
		if err := ctx.Err(); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "sgemm %d×%d×%d: %.1f GFLOP/s (best of 3)\n", n, n, n, blas.MeasureGFLOPS(b, n))
	}
	return nil
}
