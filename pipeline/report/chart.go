package report

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"blipflow/pipeline/jobstate"
)

// chart is the throughput chart, laid out for an inline SVG: bars of
// images per second in equal time bins (left axis) and the cumulative
// images done (line, right axis), over the time since the job started.
type chart struct {
	Width, Height   float64
	Left, Top       float64 // plot origin (top-left)
	PlotW, PlotH    float64
	Bottom, Right   float64 // Top+PlotH, Left+PlotW
	Bars            []chartBar
	Line, Area      string // SVG points of the cumulative line and its area
	XTicks          []chartTick
	YTicks, Y2Ticks []chartTick
	PeakRate        float64 // images per second of the busiest bin
	BinSeconds      float64
	BinLabel        string  // the bin width, printed
	HalfW           float64 // PlotW/2, to centre the x axis title
	Empty           bool
	XLabel, YLabel  string
	Y2Label         string
}

type chartBar struct {
	X, Y, W, H float64
	Title      string
}

type chartTick struct {
	Pos   float64
	Label string
}

// chartBins is the number of time bins of the bars; chartTicks the
// number of intervals between axis ticks.
const (
	chartBins  = 30
	chartTicks = 5
)

// throughputChart lays out the chart from the done shards' completion
// times (each shard's rows count when its table was recorded).
func throughputChart(shards []shardView) chart {
	c := chart{Width: 760, Height: 260, Left: 56, Top: 16, PlotW: 640, PlotH: 196,
		XLabel: "time since the job started", YLabel: "images/s", Y2Label: "images done"}
	c.Bottom, c.Right = c.Top+c.PlotH, c.Left+c.PlotW
	var done []shardView
	for _, s := range shards {
		if s.State == jobstate.StateDone && s.Rows > 0 {
			done = append(done, s)
		}
	}
	if len(done) == 0 {
		c.Empty = true
		return c
	}
	slices.SortFunc(done, func(a, b shardView) int { return int(a.Offset - b.Offset) })
	span := max(done[len(done)-1].Offset, 10*time.Millisecond)
	bin := span / chartBins
	c.BinSeconds, c.BinLabel, c.HalfW = bin.Seconds(), formatOffset(bin), c.PlotW/2
	counts := make([]int, chartBins)
	total := 0
	for _, s := range done {
		counts[min(int(s.Offset/bin), chartBins-1)] += s.Rows
		total += s.Rows
	}
	for _, n := range counts {
		c.PeakRate = max(c.PeakRate, float64(n)/c.BinSeconds)
	}
	rateTop := niceCeil(c.PeakRate)
	countTop := niceCeil(float64(total))
	x := func(d time.Duration) float64 { return c.Left + c.PlotW*float64(d)/float64(span) }
	barW := c.PlotW / chartBins
	for i, n := range counts {
		if n == 0 {
			continue
		}
		rate := float64(n) / c.BinSeconds
		h := c.PlotH * rate / rateTop
		c.Bars = append(c.Bars, chartBar{X: round1(c.Left + float64(i)*barW + 1), Y: round1(c.Bottom - h), W: round1(barW - 2), H: round1(h),
			Title: fmt.Sprintf("%s–%s: %d images, %.1f images/s", formatOffset(bin*time.Duration(i)), formatOffset(bin*time.Duration(i+1)), n, rate)})
	}
	var line strings.Builder
	fmt.Fprintf(&line, "%.1f,%.1f", c.Left, c.Bottom)
	cum := 0
	for _, s := range done {
		cum += s.Rows
		fmt.Fprintf(&line, " %.1f,%.1f", x(s.Offset), c.Bottom-c.PlotH*float64(cum)/countTop)
	}
	c.Line = line.String()
	c.Area = fmt.Sprintf("%s %.1f,%.1f", c.Line, x(done[len(done)-1].Offset), c.Bottom)
	for i := 0; i <= chartTicks; i++ {
		f := float64(i) / chartTicks
		y := round1(c.Bottom - c.PlotH*f)
		c.YTicks = append(c.YTicks, chartTick{Pos: y, Label: formatNumber(rateTop * f)})
		c.Y2Ticks = append(c.Y2Ticks, chartTick{Pos: y, Label: formatNumber(countTop * f)})
		c.XTicks = append(c.XTicks, chartTick{Pos: round1(c.Left + c.PlotW*f), Label: formatOffset(time.Duration(float64(span) * f))})
	}
	return c
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p*(1+1e-9) {
			return m * p
		}
	}
	return 10 * p
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

// formatNumber prints an axis value compactly (12, 1.5, 2.5k, 3M).
func formatNumber(v float64) string {
	switch {
	case v >= 1e6:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", v/1e6), ".0") + "M"
	case v >= 1e4:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", v/1e3), ".0") + "k"
	case v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	default:
		return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
	}
}

// formatOffset prints a time since the start: 4.2s, 3m05s, 2h07m.
func formatOffset(d time.Duration) string {
	switch {
	case d < 10*time.Second:
		return formatNumber(math.Round(d.Seconds()*100)/100) + "s"
	case d < time.Minute:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", d.Seconds()), ".0") + "s"
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
}
