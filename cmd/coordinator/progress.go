package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"blipflow/pipeline/coordinator"
)

// progress shows a job's progress on standard error. On a terminal it is
// one line redrawn in place (log lines written through it clear the line
// first and redraw it after); otherwise it is a log line every interval.
// Counts, rate and ETA are of the images done in this run: images a
// resumed job finished earlier are shown as done but not as speed.
type progress struct {
	w        io.Writer
	tty      bool
	enabled  bool
	interval time.Duration
	now      func() time.Time
	log      *slog.Logger

	mu        sync.Mutex
	began     time.Time // the command's start, for the summary
	start     time.Time // the first snapshot, for the rate
	base      int       // images done when this run first saw the job
	seen      bool
	last      coordinator.Status
	drawn     bool // a progress line is on the terminal
	lastLog   time.Time
	lastFrame string
}

// newProgress returns a display writing to w, a terminal when tty is set.
// A disabled one only passes log lines through and keeps the counts for
// the summary.
func newProgress(w io.Writer, tty, enabled bool) *progress {
	return &progress{w: w, tty: tty, enabled: enabled, interval: 10 * time.Second, now: time.Now, began: time.Now(), start: time.Now()}
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// setLogger sets the logger of the periodic lines (off a terminal).
func (p *progress) setLogger(log *slog.Logger) { p.log = log }

// Write passes log output through, clearing and then redrawing the
// progress line around it on a terminal.
func (p *progress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
	}
	n, err := p.w.Write(b)
	if p.drawn {
		fmt.Fprint(p.w, p.lastFrame)
	}
	return n, err
}

// update shows a job snapshot.
func (p *progress) update(st coordinator.Status) {
	p.mu.Lock()
	defer p.mu.Unlock()
	done := min(st.ImagesDone(), st.Images)
	if !p.seen && st.Published {
		p.seen, p.base, p.start = true, done, p.now()
	}
	p.last = st
	if !p.enabled || !p.seen {
		return
	}
	line := p.line(st, false)
	if p.tty {
		p.lastFrame = line
		fmt.Fprint(p.w, "\r\033[K"+line)
		p.drawn = true
		return
	}
	if now := p.now(); now.Sub(p.lastLog) >= p.interval || st.Complete() {
		p.lastLog = now
		if p.log != nil {
			// The logger writes through p: log without holding the lock.
			p.mu.Unlock()
			p.log.Info("progress", "job", st.Spec.ID, "status", line)
			p.mu.Lock()
		} else {
			fmt.Fprintln(p.w, line)
		}
	}
}

// line describes st: images and shards done, this run's rate and the ETA.
func (p *progress) line(st coordinator.Status, final bool) string {
	done := min(st.ImagesDone(), st.Images)
	var b strings.Builder
	pct := 100.0
	if st.Images > 0 {
		pct = 100 * float64(done) / float64(st.Images)
	}
	if p.tty && !final {
		const width = 24
		fill := int(pct / 100 * width)
		fmt.Fprintf(&b, "%s [%s%s] ", st.Spec.ID, strings.Repeat("=", fill), strings.Repeat(" ", width-fill))
	}
	fmt.Fprintf(&b, "%d/%d images (%.0f%%), %d/%d shards", done, st.Images, pct, st.Done, st.Shards)
	if st.Failed > 0 {
		fmt.Fprintf(&b, ", %d failed", st.Failed)
	}
	if p.base > 0 {
		fmt.Fprintf(&b, ", %d this run", done-p.base)
	}
	elapsed := p.now().Sub(p.start)
	rate := 0.0
	if elapsed > 0 {
		rate = float64(done-p.base) / elapsed.Seconds()
	}
	fmt.Fprintf(&b, ", %.1f img/s", rate)
	switch left := st.Images - done; {
	case left <= 0:
	case rate > 0:
		fmt.Fprintf(&b, ", ETA %s", shortDuration(time.Duration(float64(left)/rate*float64(time.Second))))
	default:
		b.WriteString(", ETA -")
	}
	return b.String()
}

// finish ends the progress line, leaving the last frame on the terminal.
func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K"+p.line(p.last, false)+"\n")
		p.drawn = false
	}
}

// runStats are the figures of this run for the summary.
type runStats struct {
	images  int // images done in this run
	earlier int // images done before this run (a resumed job)
	elapsed time.Duration
}

// stats returns this run's figures.
func (p *progress) stats() runStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	done := min(p.last.ImagesDone(), p.last.Images)
	return runStats{images: done - p.base, earlier: p.base, elapsed: p.now().Sub(p.began)}
}

// summary is the final line's tail: duration and throughput of this run.
func (s runStats) summary() string {
	rate := 0.0
	if s.elapsed > 0 {
		rate = float64(s.images) / s.elapsed.Seconds()
	}
	out := fmt.Sprintf("%d images in %s, %.1f images/s", s.images, shortDuration(s.elapsed), rate)
	if s.earlier > 0 {
		out += fmt.Sprintf(" (%d done by an earlier run)", s.earlier)
	}
	return out
}

// shortDuration rounds d for people: 850ms, 12.3s, 4m05s, 2h10m.
func shortDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		d = d.Round(time.Minute)
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
}
