package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"blipflow/pipeline/coordinator"
	"blipflow/pipeline/jobstate"
)

// clock is a settable time source.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func snapshot(done, images, shardsDone, shards int) coordinator.Status {
	return coordinator.Status{
		Spec:     jobstate.Spec{ID: "job-1"},
		Progress: jobstate.Progress{Published: true, Shards: shards, Done: shardsDone, Images: images, Rows: done},
	}
}

// On a terminal the display is one line redrawn with \r; a log line clears
// it first and redraws it after; the rate counts this run's images only.
func TestProgressOnTerminal(t *testing.T) {
	var out bytes.Buffer
	c := &clock{time.Unix(1000, 0)}
	p := newProgress(&out, true, true)
	p.now = c.now
	p.update(snapshot(100, 400, 1, 4)) // resumed: 100 done by an earlier run
	c.t = c.t.Add(10 * time.Second)
	p.update(snapshot(200, 400, 2, 4))
	log := slog.New(slog.NewTextHandler(p, nil))
	log.Info("a log line")
	p.finish()
	text := out.String()
	if strings.Count(text, "\n") != 2 {
		t.Errorf("want two lines (the log line and the final frame), got:\n%q", text)
	}
	if !strings.Contains(text, "200/400 images (50%), 2/4 shards, 100 this run, 10.0 img/s, ETA 20s") {
		t.Errorf("frame lacks this run's figures:\n%q", text)
	}
	logAt := strings.Index(text, "msg=\"a log line\"")
	if logAt < 0 || !strings.Contains(text[:logAt], "\r\033[Ktime=") {
		t.Errorf("log line not written on a cleared line:\n%q", text)
	}
	if after := text[logAt:]; !strings.Contains(after, "\n"+"job-1 [") {
		t.Errorf("progress line not redrawn after the log line:\n%q", after)
	}
	if s := p.stats(); s.images != 100 || s.earlier != 100 {
		t.Errorf("stats %+v, want 100 this run and 100 earlier", s)
	}
}

// Off a terminal the display is a log line every interval, and one when
// the job completes; no carriage returns.
func TestProgressOffTerminal(t *testing.T) {
	var out bytes.Buffer
	c := &clock{time.Unix(1000, 0)}
	p := newProgress(&out, false, true)
	p.now = c.now
	p.setLogger(slog.New(slog.NewTextHandler(p, nil)))
	for i := range 30 { // 30 snapshots a second apart: lines at 0s, 10s, 20s
		p.update(snapshot(i, 100, 0, 1))
		c.t = c.t.Add(time.Second)
	}
	p.update(snapshot(100, 100, 1, 1)) // complete: always shown
	p.finish()
	text := out.String()
	if n := strings.Count(text, "msg=progress"); n != 4 {
		t.Errorf("%d progress lines, want 4:\n%s", n, text)
	}
	if strings.Contains(text, "\r") {
		t.Errorf("carriage return off a terminal:\n%q", text)
	}
	if !strings.Contains(text, "100/100 images (100%), 1/1 shards") {
		t.Errorf("no final line:\n%s", text)
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		850 * time.Millisecond: "850ms", 12340 * time.Millisecond: "12.3s",
		245 * time.Second: "4m05s", 130 * time.Minute: "2h10m",
	} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
