package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
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

	"blipflow/index/web"
	"blipflow/internal/fixtures"
)

// searchPage is what the test reads from the search page.
type searchPage struct {
	Status  string `json:"status"`
	Results []struct {
		Key      string `json:"key"`
		Caption  string `json:"caption"`
		Complete bool   `json:"complete"`
		Width    int    `json:"width"`
	} `json:"results"`
}

const readSearchPage = `({
  status: document.getElementById("status").textContent,
  results: Array.from(document.querySelectorAll("figure.result")).map(f => ({
    key: f.querySelector(".key").textContent, caption: f.querySelector(".caption").textContent,
    complete: f.querySelector("img").complete, width: f.querySelector("img").naturalWidth}))
})`

// TestServeIndexInChromium captions a folder with one job, embeds it with
// another that builds its index (--index) when its last shard lands,
// serves the index with the first job's captions, and searches from the
// page in headless Chromium: the page shows the API's ranking, every
// thumbnail loads, and each card carries its image's caption.
func TestServeIndexInChromium(t *testing.T) {
	browser := chromiumPath(t)
	j := newLocalJob(t, 10)
	opt, itm := fixtures.Path("opt-tiny", "model"), fixtures.Path("itm-tiny", "model")
	if out, err := j.coordinator("run", "--job", "caps", "--model", opt, "--task", "caption", "--shard-size", "4"); err != nil {
		t.Fatalf("caption run: %v\n%s", err, out)
	}
	out, err := j.coordinator("run", "--job", "emb", "--model", itm, "--task", "embed", "--shard-size", "4", "--index")
	if err != nil {
		t.Fatalf("embed run: %v\n%s", err, out)
	}
	indexPath := filepath.Join(j.dir, "out", "emb", "index.bfi")
	if !strings.Contains(out, "indexed 10 images into "+indexPath) {
		t.Errorf("embed run output lacks the index line:\n%s", out)
	}
	if out, err := j.coordinator("run", "--job", "bad", "--model", opt, "--task", "caption", "--index"); err == nil || !strings.Contains(out, "--index needs --task embed") {
		t.Errorf("--index on a caption job: %v\n%s", err, out)
	}
	captions := map[string]string{}
	for key, rows := range j.rows(j.manifest("caps")) {
		captions[key] = rows[0].Captions[0]
	}

	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	serve := exec.CommandContext(j.ctx, binaries.worker, "serve", "--index", indexPath, "--addr", addr,
		"--captions", filepath.Join(j.dir, "out", "caps"))
	var serveOut strings.Builder
	serve.Stdout, serve.Stderr = &serveOut, &serveOut
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { serve.Process.Kill(); serve.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for !getOK(addr, "/") {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not answer on %s:\n%s", addr, serveOut.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	const query = "a red square"
	resp, err := http.Get("http://" + addr + "/api/search?top=6&q=" + url.QueryEscape(query))
	if err != nil {
		t.Fatal(err)
	}
	var api web.Answer
	err = json.NewDecoder(resp.Body).Decode(&api)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || len(api.Results) != 6 || api.Query != query {
		t.Fatalf("API: status %d, %v, %+v", resp.StatusCode, err, api)
	}
	if resp, err := http.Get("http://" + addr + "/api/search?q="); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("empty query: %v %v", resp.StatusCode, err)
	}

	ctx, cancel := context.WithTimeout(j.ctx, time.Minute)
	defer cancel()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, chromedp.ExecPath(browser),
		chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 1000))
	defer cancelAlloc()
	tab, cancelTab := chromedp.NewContext(allocCtx)
	defer cancelTab()
	var (
		mu       sync.Mutex
		problems []string
	)
	err = chromedp.Listen(tab, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			problems = append(problems, "exception: "+ev.ExceptionDetails.Text)
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError {
				problems = append(problems, fmt.Sprintf("log %s: %s (%s)", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
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
	if err := chromedp.Do(tab,
		chromedp.Navigate("http://"+addr+"/"),
		chromedp.SendKeys("#q", query+"\r"), // Enter submits the form
	); err != nil {
		t.Fatalf("search from the page: %v\n%s", err, serveOut.String())
	}
	wait, cancelWait := context.WithTimeout(tab, 20*time.Second)
	defer cancelWait()
	if _, err := chromedp.Run(wait, chromedp.Poll[bool](`document.querySelectorAll("figure.result").length > 0 && Array.from(document.images).every(i => i.complete)`)); err != nil {
		page, _ := chromedp.Run(tab, chromedp.Evaluate[searchPage](readSearchPage))
		t.Fatalf("no results on the page (status %q): %v\n%s", page.Status, err, serveOut.String())
	}
	page, err := chromedp.Run(tab, chromedp.Evaluate[searchPage](readSearchPage))
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Errorf("browser: %s", p)
	}
	if !strings.Contains(page.Status, "10 results for “"+query+"”") {
		t.Errorf("status %q", page.Status)
	}
	if len(page.Results) != 10 {
		t.Fatalf("%d results on the page, want all 10 images", len(page.Results))
	}
	for i, r := range page.Results {
		if i < len(api.Results) && r.Key != api.Results[i].Input {
			t.Errorf("result %d is %s on the page, %s from the API", i, r.Key, api.Results[i].Input)
		}
		if !r.Complete || r.Width <= 0 {
			t.Errorf("thumbnail of %s did not load", r.Key)
		}
		if want, ok := captions[r.Key]; !ok || r.Caption != want {
			t.Errorf("%s shows caption %q, want %q", r.Key, r.Caption, want)
		}
	}
}
