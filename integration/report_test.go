package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"blipflow/pipeline/worker"
)

// chromiumPath returns Chromium's binary; without it the test skips,
// unless BLIPFLOW_REQUIRE_CHROMIUM=1 (CI, after .ci/install-chromium.sh).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("BLIPFLOW_REQUIRE_CHROMIUM") == "1" {
		t.Fatal("chromium not found and BLIPFLOW_REQUIRE_CHROMIUM=1: run .ci/install-chromium.sh")
	}
	t.Skip("chromium not found (install it with .ci/install-chromium.sh)")
	return ""
}

// pageState is what the test reads from the loaded report.
type pageState struct {
	Title  string `json:"title"`
	Images []struct {
		Src      string `json:"src"`
		Complete bool   `json:"complete"`
		Width    int    `json:"width"`
	} `json:"images"`
	Cards []struct {
		Key     string `json:"key"`
		Caption string `json:"caption"`
	} `json:"cards"`
	Text string `json:"text"`
	SVG  int    `json:"svgShapes"`
}

const readPage = `({
  title: document.title,
  images: Array.from(document.images).map(i => ({src: i.src, complete: i.complete, width: i.naturalWidth})),
  cards: Array.from(document.querySelectorAll("figure.sample")).map(f => ({
    key: f.querySelector(".key").textContent, caption: f.querySelector(".caption").textContent})),
  text: document.body.innerText,
  svgShapes: document.querySelectorAll("svg.chart rect, svg.chart polyline").length
})`

// TestReportInChromium runs a small job (--local, with corrupt files and
// duplicates), writes its report and opens it in headless Chromium: the
// page loads without console errors or exceptions, every thumbnail loads,
// and each card shows its image's caption from the job's tables.
func TestReportInChromium(t *testing.T) {
	browser := chromiumPath(t)
	j := newLocalJob(t, 36)
	j.write("img/bad/truncated.png", mustPNG(t)[:40])
	j.write("img/bad/text.jpg", []byte("not an image"))
	copyOf, err := j.in.Read(j.ctx, "img/000/000000.png")
	if err != nil {
		t.Fatal(err)
	}
	j.write("img/copy/000000.png", copyOf)
	if out, err := j.coordinator("run", "--job", "reported", "--model", "nop:delay=20ms", "--shard-size", "6", "--dedup"); err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	dir := filepath.Join(t.TempDir(), "report")
	out, err := j.coordinator("report", "reported", "--out", dir, "--sample", "12")
	if err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	if !strings.Contains(out, "39 rows, 2 errors, 1 duplicates, 12 thumbnails") {
		t.Errorf("report output: %s", out)
	}
	captions := map[string]string{}
	for key, rows := range j.rows(j.manifest("reported")) {
		if len(rows[0].Captions) > 0 && rows[0].Extra[worker.ExtraDuplicateOf] == "" {
			captions[key] = rows[0].Captions[0]
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, chromedp.ExecPath(browser),
		chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 1000))
	defer cancelAlloc()
	tab, cancelTab := chromedp.NewContext(allocCtx)
	defer cancelTab()
	var (
		mu       sync.Mutex
		problems []string
	)
	report := func(format string, args ...any) {
		mu.Lock()
		problems = append(problems, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	err = chromedp.Listen(tab, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			report("exception: %s", ev.ExceptionDetails.Text)
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning {
				report("console.%s: %d args", ev.Type, len(ev.Args))
			}
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError {
				report("log %s: %s (%s)", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
			}
		}
	})
	if err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if _, err := chromedp.Call(tab, runtime.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(tab, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(tab, chromedp.Navigate("file://"+filepath.Join(dir, "index.html"))); err != nil {
		t.Fatalf("load the report: %v", err)
	}
	page, err := chromedp.Run(tab, chromedp.Evaluate[pageState](readPage))
	if err != nil {
		t.Fatalf("read the report: %v", err)
	}
	if shot, err := chromedp.Run(tab, chromedp.FullScreenshot(100)); err != nil || len(shot) == 0 {
		t.Errorf("screenshot: %v", err)
	} else if err := os.WriteFile(filepath.Join(dir, "screenshot.png"), shot, 0o644); err != nil {
		t.Error(err)
	}

	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Errorf("browser: %s", p)
	}
	if !strings.Contains(page.Title, "reported") {
		t.Errorf("title %q", page.Title)
	}
	if len(page.Images) != 12 || len(page.Cards) != 12 {
		t.Fatalf("%d images, %d cards; want 12 of each", len(page.Images), len(page.Cards))
	}
	for _, img := range page.Images {
		if !img.Complete || img.Width <= 0 {
			t.Errorf("thumbnail %s did not load (complete %v, naturalWidth %d)", img.Src, img.Complete, img.Width)
		}
	}
	for _, card := range page.Cards {
		want, ok := captions[card.Key]
		if !ok || card.Caption != want {
			t.Errorf("card %s shows caption %q, want %q", card.Key, card.Caption, want)
		}
	}
	for _, text := range []string{"decode", "Duplicates", "Throughput over time", "img/bad/truncated.png"} {
		if !strings.Contains(strings.ToLower(page.Text), strings.ToLower(text)) {
			t.Errorf("page text lacks %q", text)
		}
	}
	if page.SVG < 2 {
		t.Errorf("throughput chart has %d shapes", page.SVG)
	}
	if t.Failed() {
		t.Logf("report left in %s", dir)
	}
}
