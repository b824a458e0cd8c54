package hub

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// fileProgress shows one file's download as a byte-rate progress bar; with
// no writer it shows nothing.
type fileProgress struct {
	bar *progressbar.ProgressBar
}

// newFileProgress starts a bar on w for a file of total bytes (-1 when
// unknown) of which done are already there.
func newFileProgress(w io.Writer, name string, total, done int64) *fileProgress {
	if w == nil {
		return &fileProgress{}
	}
	bar := progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(name),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(25),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	)
	if done > 0 {
		bar.Set64(done)
	}
	return &fileProgress{bar: bar}
}

// Write counts len(b) downloaded bytes.
func (p *fileProgress) Write(b []byte) (int, error) {
	if p.bar != nil {
		p.bar.Add(len(b))
	}
	return len(b), nil
}

// set moves the bar to n bytes, as when a download restarts.
func (p *fileProgress) set(n int64) {
	if p.bar != nil {
		p.bar.Set64(n)
	}
}

// finish fills the bar on success, or leaves it where it stopped.
func (p *fileProgress) finish(ok bool) {
	if p.bar == nil {
		return
	}
	if ok {
		p.bar.Finish()
		return
	}
	p.bar.Exit()
}
