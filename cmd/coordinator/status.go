package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"text/tabwriter"

	"blipflow/internal/cli"
	"blipflow/internal/redact"
	"blipflow/pipeline/coordinator"
	"blipflow/pipeline/jobstate"
	"blipflow/pipeline/node"
)

func init() {
	commands["status"] = command{summary: "show a job's progress", run: runStatus}
	commands["wait"] = command{summary: "wait for a job to finish and write its manifest", run: runWait}
}

// parseInterspersed parses flags that may come before or after the
// positional arguments, and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := cli.Parse(fs, args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// jobCommand parses the flags of a command on one job (status, wait,
// report, retry): JOB is required, except that with --local it defaults
// to the latest job of --output.
func jobCommand(fs *flag.FlagSet, lf *localFlags, usage, summary string, args []string) (string, error) {
	setUsage(fs, usage, summary)
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		return "", err
	}
	switch {
	case len(positional) == 1:
		return positional[0], nil
	case len(positional) == 0 && lf.local && lf.output != "":
		return "", nil // the latest job of the output, read once connected
	default:
		fs.Usage()
		return "", fmt.Errorf("want one JOB, got %d arguments", len(positional))
	}
}

// setUsage makes -h print the command's synopsis, what it does and its flags.
func setUsage(fs *flag.FlagSet, usage, summary string) {
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: %s\n\n%s\n\nflags:\n", usage, summary)
		fs.PrintDefaults()
	}
}

// latestJob returns job, or when empty the latest job of the output.
func latestJob(ctx context.Context, nf *node.Flags, lf *localFlags, job string) (string, error) {
	if job != "" {
		return job, nil
	}
	out, err := nf.OpenStore()(ctx, lf.output)
	if err != nil {
		return "", fmt.Errorf("--output: %w", err)
	}
	return coordinator.Latest(ctx, out)
}

const jobHelp = `JOB is a job id, as 'coordinator run' prints it. With --local the command
reads the job state a 'coordinator run --local' keeps under its output
(OUTPUT/.blipflow, or --store-dir) and JOB defaults to the output's latest
job (OUTPUT/latest); without it, it asks the NATS at --nats.`

func runStatus(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	var (
		nf node.Flags
		lf localFlags
	)
	nf.Register(fs, "")
	lf.register(fs, false)
	asJSON := fs.Bool("json", false, "print the status as JSON (snake_case keys)")
	job, err := jobCommand(fs, &lf, "coordinator status [flags] JOB\n       coordinator status --local --output OUT [JOB]", "Show a job's progress.\n\n"+jobHelp, args)
	if err != nil {
		return err
	}
	log, err := nf.Logger(os.Stderr)
	if err != nil {
		return err
	}
	var st coordinator.Status
	err = withCoordinator(ctx, "status", &nf, &lf, log, func(coord *coordinator.Coordinator) error {
		if job, err = latestJob(ctx, &nf, &lf, job); err != nil {
			return err
		}
		st, err = coord.Summary(ctx, job)
		return err
	})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(statusJSON(st))
	}
	printStatus(stdout, st)
	return nil
}

// statusView is the JSON form of a status.
type statusView struct {
	Job       string                         `json:"job"`
	Spec      jobstate.Spec                  `json:"spec"`
	Progress  jobstate.Progress              `json:"progress"`
	Complete  bool                           `json:"complete"`
	Waiting   uint64                         `json:"queue_waiting"`
	Unhealthy map[string]jobstate.ShardState `json:"unhealthy_shards,omitempty"`
}

func statusJSON(st coordinator.Status) statusView {
	v := statusView{Job: st.Spec.ID, Spec: st.Spec, Progress: st.Progress, Complete: st.Complete(), Waiting: st.Waiting}
	for id, s := range st.States {
		if s.State != jobstate.StateDone {
			if v.Unhealthy == nil {
				v.Unhealthy = map[string]jobstate.ShardState{}
			}
			v.Unhealthy[id] = s
		}
	}
	return v
}

func printStatus(w io.Writer, st coordinator.Status) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	state := "running"
	switch {
	case st.Spec.Failure != "":
		state = "failed: " + st.Spec.Failure
	case st.Spec.Finished:
		state = "finished"
	case st.Complete():
		state = "complete (run 'coordinator wait' to write the manifest)"
	case !st.Published:
		state = "publishing"
	}
	fmt.Fprintf(tw, "job\t%s\n", st.Spec.ID)
	fmt.Fprintf(tw, "state\t%s\n", state)
	fmt.Fprintf(tw, "input\t%s\n", redact.URL(st.Spec.Input))
	fmt.Fprintf(tw, "output\t%s\n", redact.URL(st.Spec.Output))
	fmt.Fprintf(tw, "task\t%s\n", st.Spec.Task)
	if st.Spec.Model != "" {
		fmt.Fprintf(tw, "model\t%s\n", st.Spec.Model)
	}
	if len(st.Spec.Generation) > 0 {
		fmt.Fprintf(tw, "generation\t%s\n", st.Spec.Generation)
	}
	if st.Spec.PromptColumn != "" {
		fmt.Fprintf(tw, "prompts\tfrom column %q\n", st.Spec.PromptColumn)
	}
	fmt.Fprintf(tw, "shards\t%d done, %d failed, %d retrying, %d total (%d took more than one delivery)\n", st.Done, st.Failed, st.Retrying, st.Shards, st.Redelivered)
	fmt.Fprintf(tw, "images\t%d rows (%d errors) of %d\n", st.Rows, st.ErrorRows, st.Images)
	fmt.Fprintf(tw, "queue\t%d shards waiting (all jobs)\n", st.Waiting)
	tw.Flush()
	var bad []string
	for id, s := range st.States {
		if s.State != jobstate.StateDone {
			bad = append(bad, id)
		}
	}
	sort.Strings(bad)
	for _, id := range bad {
		s := st.States[id]
		fmt.Fprintf(w, "  %s %s after %d deliveries: %s\n", id, s.State, s.Deliveries, s.Reason)
	}
}

func runWait(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("wait", flag.ContinueOnError)
	var (
		nf node.Flags
		lf localFlags
	)
	nf.Register(fs, "")
	lf.register(fs, false)
	showProgress := fs.Bool("progress", true, "show progress on stderr")
	job, err := jobCommand(fs, &lf, "coordinator wait [flags] JOB", "Wait for a job to finish and write its manifest.\n\n"+jobHelp, args)
	if err != nil {
		return err
	}
	show := newProgress(os.Stderr, isTerminal(os.Stderr), *showProgress)
	log, err := nf.Logger(show)
	if err != nil {
		return err
	}
	show.setLogger(log)
	var m coordinator.Manifest
	err = withCoordinator(ctx, "wait", &nf, &lf, log, func(coord *coordinator.Coordinator) error {
		if job, err = latestJob(ctx, &nf, &lf, job); err != nil {
			return err
		}
		m, err = followAndFinish(ctx, coord, job, show.update)
		return err
	})
	show.finish()
	if ctx.Err() != nil && job != "" {
		fmt.Fprintf(os.Stderr, "interrupted: job %s goes on without this command; 'coordinator wait %s' follows it again\n", job, job)
	}
	if err != nil {
		return err
	}
	return report(stdout, m, show.stats())
}
