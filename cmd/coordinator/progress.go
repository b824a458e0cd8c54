package main

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"

	"blipflow/pipeline/coordinator"
)

// progressBar draws job progress (images/s, ETA) on w.
type progressBar struct {
	w   io.Writer
	bar *progressbar.ProgressBar
}

func newProgressBar(w io.Writer) *progressBar { return &progressBar{w: w} }

// update shows a job snapshot.
func (p *progressBar) update(st coordinator.Status) {
	if p.bar == nil {
		p.bar = progressbar.NewOptions(st.Images,
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetDescription(st.Spec.ID),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("img"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionSetWidth(30),
		)
	}
	desc := fmt.Sprintf("%s shards %d/%d", st.Spec.ID, st.Done, st.Shards)
	if st.Failed > 0 {
		desc += fmt.Sprintf(" (%d failed)", st.Failed)
	}
	p.bar.Describe(desc)
	_ = p.bar.Set(min(st.ImagesDone(), st.Images))
}

// finish ends the bar's line.
func (p *progressBar) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
		fmt.Fprintln(p.w)
	}
}
