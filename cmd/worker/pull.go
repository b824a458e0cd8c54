package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"blipflow/model/hub"
)

func init() {
	commands["pull"] = command{summary: "download a model into the Hugging Face cache and print its folder", run: runPull}
}

func runPull(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("pull", flag.ContinueOnError)
	model := fs.String("model", "", "Hugging Face model name, ORG/NAME[@REVISION] (required)")
	quiet := fs.Bool("quiet", false, "no progress bars")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *model == "" {
		return errors.New("--model is required")
	}
	opts := hub.Options{}
	if !*quiet {
		opts.Progress = os.Stderr
	}
	dir, err := hub.Resolve(ctx, *model, opts)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, dir)
	return err
}
