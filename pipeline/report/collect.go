package report

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"blipflow/pipeline/jobstate"
	"blipflow/pipeline/worker"
	"blipflow/schemas"
)

// collect reads the tables of the job's done shards.
func collect(ctx context.Context, cfg Config) (jobData, error) {
	d := jobData{shards: sortedShards(cfg.Spec, cfg.States)}
	s := &d.summary
	s.Job, s.Images, s.Shards = cfg.Spec.ID, cfg.Spec.Images, cfg.Spec.Shards
	for _, sh := range d.shards {
		switch sh.State {
		case jobstate.StateDone:
			s.Done++
			s.Duration = max(s.Duration, sh.Offset)
			if sh.Model != "" && !slices.Contains(s.Models, sh.Model) {
				s.Models = append(s.Models, sh.Model)
			}
		case jobstate.StateFailed:
			s.Failed++
		}
	}
	slices.Sort(s.Models)
	for _, sh := range d.shards {
		if sh.State != jobstate.StateDone {
			continue
		}
		file := cfg.States[sh.ID].File
		data, err := cfg.Output.Read(ctx, file)
		if err != nil {
			return jobData{}, fmt.Errorf("report: shard %s table: %w", sh.ID, err)
		}
		_, rows, err := schemas.ReadRows(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return jobData{}, fmt.Errorf("report: shard %s table %s: %w", sh.ID, file, err)
		}
		for _, r := range rows {
			slim := slimRow{Key: r.Key, Error: r.Error, DuplicateOf: r.Extra[worker.ExtraDuplicateOf], Shard: sh.ID, Source: r.Source}
			if len(r.Captions) > 0 {
				slim.Caption = r.Captions[0]
			}
			switch {
			case slim.Error != "":
				s.Errors++
			case slim.DuplicateOf != "":
				s.Duplicates++
			default:
				s.OK++
			}
			d.rows = append(d.rows, slim)
		}
	}
	s.Rows = len(d.rows)
	slices.SortFunc(d.rows, func(a, b slimRow) int { return strings.Compare(a.Key, b.Key) })
	return d, nil
}

// sample is one thumbnail card.
type sample struct {
	Key, Caption string
	// Source is where the image is read (see slimRow).
	Source string
	// Thumb is the thumbnail's path relative to the page (empty when it
	// could not be made; Problem says why).
	Thumb, Problem string
}

// pickSample picks n processed rows spread evenly over the keys.
func (d jobData) pickSample(n int) []sample {
	var ok []slimRow
	for _, r := range d.rows {
		if r.Error == "" && r.DuplicateOf == "" {
			ok = append(ok, r)
		}
	}
	n = min(n, len(ok))
	picked := make([]sample, n)
	for i := range picked {
		r := ok[i*len(ok)/n]
		picked[i] = sample{Key: r.Key, Caption: r.Caption, Source: r.Source}
	}
	return picked
}

// errorReason is one kind of error and how often it happened.
type errorReason struct {
	Stage, Reason string
	Count         int
	Examples      []string
	// Share is Count relative to the most frequent reason (0..1].
	Share float64
}

// maxExamples is the number of example keys listed per reason.
const maxExamples = 3

// errorReasons groups the error rows by their message with the image's
// own key taken out, most frequent first.
func (d jobData) errorReasons() []errorReason {
	byReason := map[string]*errorReason{}
	for _, r := range d.rows {
		if r.Error == "" {
			continue
		}
		stage, reason := splitError(r.Error, r.Key)
		id := stage + "\x00" + reason
		e, ok := byReason[id]
		if !ok {
			e = &errorReason{Stage: stage, Reason: reason}
			byReason[id] = e
		}
		e.Count++
		if len(e.Examples) < maxExamples {
			e.Examples = append(e.Examples, r.Key)
		}
	}
	reasons := make([]errorReason, 0, len(byReason))
	top := 0
	for _, e := range byReason {
		reasons = append(reasons, *e)
		top = max(top, e.Count)
	}
	for i := range reasons {
		reasons[i].Share = float64(reasons[i].Count) / float64(top)
	}
	slices.SortFunc(reasons, func(a, b errorReason) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Stage, b.Stage), strings.Compare(a.Reason, b.Reason))
	})
	return reasons
}

// splitError splits a row's "stage: reason" error and replaces the
// image's key in the reason, so that the same failure of different
// images groups together.
func splitError(msg, key string) (stage, reason string) {
	stage, reason, ok := strings.Cut(msg, ": ")
	if !ok {
		return "other", msg
	}
	if key != "" {
		reason = strings.ReplaceAll(reason, key, "…")
	}
	return stage, reason
}
