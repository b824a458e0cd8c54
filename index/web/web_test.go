package web

import (
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"blipflow/index"
)

// textVectors embeds the texts the test asks for as given vectors.
type textVectors map[string][]float32

func (t textVectors) EmbedTexts(_ context.Context, texts []string) ([][]float32, error) {
	var out [][]float32
	for _, s := range texts {
		out = append(out, t[s])
	}
	return out, nil
}

// newServer indexes n synthetic images whose keys are PNG files written
// to a folder, every other one with a caption in the index.
func newServer(t *testing.T, n int) (*httptest.Server, *index.Synth, textVectors) {
	t.Helper()
	dir := t.TempDir()
	meta := index.Meta{Model: "m", Fingerprint: "f", Kind: "itc_image", Vectors: 4, Dim: 16, Normalized: true}
	syn := index.NewSynth(4, 16, 5, 3)
	path := filepath.Join(dir, "ix.bfi")
	b, err := index.Create(path, meta, index.Params{Lists: 4})
	if err != nil {
		t.Fatal(err)
	}
	img := image.NewRGBA(image.Rect(0, 0, 40, 30))
	for i := range img.Pix {
		img.Pix[i] = byte(i)
	}
	img.Set(0, 0, color.White)
	for i := range n {
		key := filepath.Join(dir, "img"+string(rune('a'+i))+".png")
		f, err := os.Create(key)
		if err != nil {
			t.Fatal(err)
		}
		png.Encode(f, img)
		f.Close()
		v := make([]float32, 64)
		syn.Image(i, v)
		info := index.Info{}
		if i%2 == 0 {
			info.Caption = "caption " + string(rune('a'+i))
		}
		if err := b.Add(key, info, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	ix, err := index.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	q := make([]float32, 16)
	syn.Query(0, q)
	texts := textVectors{"a query": q}
	captions := map[string]string{filepath.Join(dir, "imgb.png"): "from another job"}
	srv := httptest.NewServer((&Server{Index: ix, Embed: texts, Captions: captions, MaxTop: 20}).Handler())
	t.Cleanup(srv.Close)
	return srv, syn, texts
}

func get(t *testing.T, url string, into any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if into != nil {
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			t.Fatalf("%s: %v", url, err)
		}
	}
	return resp.StatusCode
}

func TestAPI(t *testing.T) {
	srv, _, _ := newServer(t, 10)
	var ans Answer
	if code := get(t, srv.URL+"/api/search?q=a+query&top=10", &ans); code != 200 || len(ans.Results) != 10 {
		t.Fatalf("search: %d, %+v", code, ans)
	}
	for i, r := range ans.Results {
		if i > 0 && r.Score > ans.Results[i-1].Score {
			t.Errorf("results not best first: %v", ans.Results)
		}
		base := filepath.Base(r.Input)
		switch {
		case base == "imgb.png" && r.Caption != "from another job",
			(base[3]-'a')%2 == 0 && r.Caption != "caption "+base[3:4]:
			t.Errorf("%s has caption %q", base, r.Caption)
		}
		if code := get(t, srv.URL+r.Image, nil); code != 200 {
			t.Errorf("thumbnail %s: status %d", r.Image, code)
		}
	}
	var like Answer
	if code := get(t, srv.URL+"/api/similar?image=3&top=3", &like); code != 200 || len(like.Results) != 3 || like.Results[0].ID != 3 {
		t.Errorf("similar to image 3: %d %+v", code, like)
	}
	for _, bad := range []string{"/api/search?q=", "/api/search?q=x&top=0", "/api/search?q=x&top=21", "/api/similar?image=10", "/api/similar?image=x"} {
		var e map[string]string
		if code := get(t, srv.URL+bad, &e); code != http.StatusBadRequest || e["error"] == "" {
			t.Errorf("%s: status %d, %v", bad, code, e)
		}
	}
	if code := get(t, srv.URL+"/image/99", nil); code != http.StatusNotFound {
		t.Errorf("thumbnail of image 99: status %d", code)
	}
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || !strings.HasPrefix(ct, "text/html") {
		t.Errorf("page: %d %s", resp.StatusCode, ct)
	}
}
