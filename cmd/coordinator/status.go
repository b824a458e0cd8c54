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

	"blipflow/internal/redact"
	"blipflow/pipeline/coordinator"
	"blipflow/pipeline/jobstate"
	"blipflow/pipeline/node"
)

func init() {
	commands["status"] = command{summary: "show a job's progress", run: runStatus}
	commands["wait"] = command{summary: "wait for a job to finish and write its manifest", run: runWait}
}

// dialCoordinator parses the shared flags and connects.
func dialCoordinator(ctx context.Context, name string, fs *flag.FlagSet, nf *node.Flags, args []string) (*coordinator.Coordinator, *node.Conn, string, error) {
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, nil, "", err
	}
	if len(positional) != 1 {
		return nil, nil, "", fmt.Errorf("usage: coordinator %s [flags] JOB", name)
	}
	log, err := nf.Logger(os.Stderr)
	if err != nil {
		return nil, nil, "", err
	}
	conn, err := node.Dial(ctx, nf.NATSURL, "blipflow-coordinator-"+name, nf.Queue, nf.Jobs, log)
	if err != nil {
		return nil, nil, "", err
	}
	coord, err := coordinator.New(coordinator.Config{JS: conn.JS, Queue: conn.Queue, Jobs: conn.Jobs, OpenStore: nf.OpenStore(), Log: log})
	if err != nil {
		conn.Close()
		return nil, nil, "", err
	}
	return coord, conn, positional[0], nil
}

// parseInterspersed parses flags that may come before or after the
// positional arguments, and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func runStatus(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	var nf node.Flags
	nf.Register(fs, "")
	asJSON := fs.Bool("json", false, "print the status as JSON")
	coord, conn, job, err := dialCoordinator(ctx, "status", fs, &nf, args)
	if err != nil {
		return err
	}
	defer conn.Close()
	st, err := coord.Status(ctx, job)
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
	fmt.Fprintf(tw, "shards\t%d done, %d failed, %d retrying, %d total\n", st.Done, st.Failed, st.Retrying, st.Shards)
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
	var nf node.Flags
	nf.Register(fs, "")
	showProgress := fs.Bool("progress", true, "draw a progress bar on stderr")
	coord, conn, job, err := dialCoordinator(ctx, "wait", fs, &nf, args)
	if err != nil {
		return err
	}
	defer conn.Close()
	bar := newProgressBar(os.Stderr)
	m, err := followAndFinish(ctx, coord, job, func(st coordinator.Status) {
		if *showProgress {
			bar.update(st)
		}
	})
	bar.finish()
	if err != nil {
		return err
	}
	return report(stdout, m)
}
