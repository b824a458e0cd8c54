package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"blipflow/pipeline/coordinator"
	"blipflow/pipeline/node"
	jobreport "blipflow/pipeline/report"
	"blipflow/sharding"
	"blipflow/storage"
)

func init() {
	commands["report"] = command{summary: "write a job's HTML report (summary, throughput, errors, sample thumbnails)", run: runReport}
}

func runReport(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	var (
		nf node.Flags
		lf localFlags
	)
	nf.Register(fs, "")
	lf.register(fs, false)
	out := fs.String("out", "", "folder to write index.html and its thumbnails to (required)")
	sample := fs.Int("sample", 24, "thumbnails in the sample (0: none)")
	thumbSize := fs.Int("thumb-size", 240, "longest side of a thumbnail in pixels")
	job, err := jobCommand(fs, &lf, "coordinator report [flags] --out DIR JOB",
		"Write a job's HTML report: summary, throughput, errors and sample thumbnails.\n\n"+jobHelp, args)
	if err != nil {
		return err
	}
	if *out == "" {
		fs.Usage()
		return errors.New("--out DIR is required")
	}
	if *sample == 0 {
		*sample = -1 // Config's "none"
	}
	log, err := nf.Logger(os.Stderr)
	if err != nil {
		return err
	}
	open := nf.OpenStore()
	var summary jobreport.Summary
	err = withCoordinator(ctx, "report", &nf, &lf, log, func(coord *coordinator.Coordinator) error {
		job, err := latestJob(ctx, &nf, &lf, job)
		if err != nil {
			return err
		}
		st, err := coord.Status(ctx, job)
		if err != nil {
			return err
		}
		output, err := open(ctx, st.Spec.Output)
		if err != nil {
			return fmt.Errorf("job %s output: %w", st.Spec.ID, err)
		}
		// Manifest and WebDataset rows name their own sources; only a
		// folder or prefix input is opened to read keys under.
		var input storage.Store
		if !sharding.IsManifest(st.Spec.Input) && !sharding.IsWebDataset(st.Spec.Input) {
			if input, err = open(ctx, st.Spec.Input); err != nil {
				return fmt.Errorf("job %s input: %w", st.Spec.ID, err)
			}
		}
		summary, err = jobreport.Write(ctx, jobreport.Config{Spec: st.Spec, States: st.States, Output: output, Input: input,
			OpenStore: open, Dir: *out, Sample: *sample, ThumbSize: *thumbSize})
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "job %s: report %s (%d rows, %d errors, %d duplicates, %d thumbnails)\n",
		summary.Job, summary.Page, summary.Rows, summary.Errors, summary.Duplicates, summary.Thumbnails)
	return nil
}
