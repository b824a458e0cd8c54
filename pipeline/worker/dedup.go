package worker

import (
	"context"

	"blipflow/pipeline/jobstate"
)

// Extra keys of a duplicate row (see schemas/README.md).
const (
	// ExtraDuplicateOf names the key of the image that claimed the row's
	// content first.
	ExtraDuplicateOf = "duplicate_of"
	// ExtraDuplicateTable names the earlier results table holding that
	// key, when the content was claimed there.
	ExtraDuplicateTable = "duplicate_table"
)

// dedupScope returns the scope whose content claims a job's images check
// (empty: the job does not deduplicate).
func dedupScope(spec jobstate.Spec) string {
	if spec.Dedup == nil {
		return ""
	}
	if spec.Dedup.Scope == "" {
		return spec.ID
	}
	return spec.Dedup.Scope
}

// claimContent claims the content of r (its SHA-256 is set) for r's key.
// It reports whether another image claimed it first, and then marks r as
// its duplicate.
func (w *Worker) claimContent(ctx context.Context, scope string, r *row) (bool, error) {
	var (
		first jobstate.ContentClaim
		own   bool
	)
	err := w.retry(ctx, "claim content of "+r.Key, func() error {
		var err error
		first, own, err = w.cfg.Jobs.ClaimContent(ctx, scope, r.SHA256, jobstate.ContentClaim{Key: r.Key})
		return err
	})
	if err != nil || own {
		return false, err
	}
	r.DuplicateOf, r.DuplicateTable = first.Key, first.Table
	return true, nil
}

// extra returns the row's Extra column: the duplicate's origin, or nil.
func (r *row) extra() map[string]string {
	if r.DuplicateOf == "" {
		return nil
	}
	extra := map[string]string{ExtraDuplicateOf: r.DuplicateOf}
	if r.DuplicateTable != "" {
		extra[ExtraDuplicateTable] = r.DuplicateTable
	}
	return extra
}

// countDuplicates counts the rows recorded as duplicates.
func countDuplicates(rows []row) int {
	n := 0
	for i := range rows {
		if rows[i].DuplicateOf != "" {
			n++
		}
	}
	return n
}
