package report

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"os"
	"strings"
	"time"

	"blipflow/pipeline/jobstate"
)

//go:embed page.html
var pageSource string

// pageTemplate renders the report page (html/template escapes every value).
var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"percent": func(f float64) string { return fmt.Sprintf("%.0f%%", 100*f) },
	"when":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"offset":  formatOffset,
}).Parse(pageSource))

// view is what the page template shows.
type view struct {
	Spec      jobstate.Spec
	State     string
	Generated time.Time
	Summary   Summary
	Cards     []card
	Chart     chart
	Errors    []errorReason
	Samples   []sample
	Shards    []shardView
	Retries   []jobstate.RetryRound
}

// card is one number of the summary.
type card struct {
	Label, Value, Note string
	// Tone colours the card: "", "good", "warn" or "bad".
	Tone string
	// Long marks a text value (a model name or path) set smaller, across two columns.
	Long bool
}

// buildView assembles the page's content.
func buildView(cfg Config, d jobData, samples []sample) view {
	s := d.summary
	v := view{Spec: cfg.Spec, Generated: cfg.Now.UTC(), Summary: s, Chart: throughputChart(d.shards),
		Errors: d.errorReasons(), Samples: samples, Shards: d.shards, Retries: cfg.Spec.Retries}
	switch {
	case cfg.Spec.Finished:
		v.State = "finished"
	case cfg.Spec.Published && s.Done+s.Failed >= s.Shards:
		v.State = "complete"
	default:
		v.State = "running"
	}
	rate := "–"
	if s.Duration > 0 {
		rate = fmt.Sprintf("%.1f", float64(s.Rows)/s.Duration.Seconds())
	}
	models := strings.Join(s.Models, ", ")
	if models == "" {
		models = "–"
	}
	v.Cards = []card{
		{Label: "Images", Value: fmt.Sprint(s.Images), Note: fmt.Sprintf("%d rows written", s.Rows)},
		{Label: "Processed", Value: fmt.Sprint(s.OK), Note: percentOf(s.OK, s.Rows) + " of rows", Tone: "good"},
		{Label: "Errors", Value: fmt.Sprint(s.Errors), Note: percentOf(s.Errors, s.Rows) + " of rows", Tone: tone(s.Errors, "bad")},
		{Label: "Duplicates", Value: fmt.Sprint(s.Duplicates), Note: "skipped copies", Tone: tone(s.Duplicates, "warn")},
		{Label: "Shards", Value: fmt.Sprintf("%d / %d", s.Done, s.Shards), Note: fmt.Sprintf("%d dead-lettered", s.Failed), Tone: tone(s.Failed, "bad")},
		{Label: "Duration", Value: formatOffset(s.Duration.Round(100 * time.Millisecond)), Note: rate + " images/s"},
		{Label: "Retry rounds", Value: fmt.Sprint(len(cfg.Spec.Retries)), Note: "coordinator retry"},
		{Label: "Model", Value: models, Note: "task " + cfg.Spec.Task, Long: true},
	}
	return v
}

func tone(n int, bad string) string {
	if n > 0 {
		return bad
	}
	return ""
}

func percentOf(n, of int) string {
	if of == 0 {
		return "0%"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(of))
}

// writePage renders v to path.
func writePage(path string, v view) error {
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, v); err != nil {
		return fmt.Errorf("report page: %w", err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("report page: %w", err)
	}
	return nil
}
