// Package web serves an index over HTTP: a JSON search API and a small
// search page showing the top results as thumbnails with their captions.
//
//	GET /                                the page
//	GET /api/search?q=TEXT&top=K         images for a text
//	GET /api/similar?image=ID&top=K      images like indexed image ID
//	GET /image/ID                        a JPEG thumbnail of indexed image ID
//
// The search answers have the shape of `worker search`'s output lines,
// with each result's index id, caption and thumbnail address added.
package web

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"blipflow/index"
	"blipflow/model/imageproc"
	"blipflow/pipeline/fetch"
	"blipflow/pipeline/report"
	"blipflow/sharding"
	"blipflow/storage"
)

//go:embed page.html
var page []byte

// Embedder turns a query text into the vector the index is searched with;
// a cancelled ctx (the request's) stops it.
type Embedder interface {
	EmbedTexts(ctx context.Context, texts []string) ([][]float32, error)
}

// Server answers searches over one index.
type Server struct {
	Index *index.Index
	Embed Embedder
	// Captions maps image keys to captions written by another job (used
	// where the index has none for a key).
	Captions map[string]string
	Options  index.SearchOptions
	// MaxTop bounds the top parameter (default 100).
	MaxTop int
	// ThumbSize is the thumbnails' longest side in pixels (default 256).
	ThumbSize int
	Log       *slog.Logger

	embedMu sync.Mutex // the model runs one call at a time
	once    sync.Once
	proc    *imageproc.Processor
	procErr error
}

// Result is one ranked image.
type Result struct {
	Input   string  `json:"input"`
	Score   float32 `json:"score"`
	ID      int     `json:"id"`
	Caption string  `json:"caption,omitempty"`
	Image   string  `json:"image"`
}

// Answer is a search's response.
type Answer struct {
	Query   string   `json:"query"`
	Results []Result `json:"results"`
}

// Handler routes the server's endpoints.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	})
	mux.HandleFunc("GET /api/search", s.searchText)
	mux.HandleFunc("GET /api/similar", s.searchSimilar)
	mux.HandleFunc("GET /image/{id}", s.thumbnail)
	return mux
}

func (s *Server) top(r *http.Request) (int, error) {
	maxTop := s.MaxTop
	if maxTop <= 0 {
		maxTop = 100
	}
	v := r.URL.Query().Get("top")
	if v == "" {
		return min(12, maxTop), nil
	}
	k, err := strconv.Atoi(v)
	if err != nil || k < 1 || k > maxTop {
		return 0, fmt.Errorf("top %q: want a number from 1 to %d", v, maxTop)
	}
	return k, nil
}

func (s *Server) searchText(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	k, err := s.top(r)
	if err == nil && q == "" {
		err = errors.New("q: empty query")
	}
	if err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	s.embedMu.Lock()
	vecs, err := s.Embed.EmbedTexts(r.Context(), []string{q})
	s.embedMu.Unlock()
	if err != nil {
		httpError(w, http.StatusInternalServerError, fmt.Errorf("embed the query: %w", err))
		return
	}
	s.answer(w, q, vecs, k)
}

func (s *Server) searchSimilar(w http.ResponseWriter, r *http.Request) {
	k, err := s.top(r)
	if err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	id, err := s.imageID(r.URL.Query().Get("image"))
	if err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	vec, err := s.Index.ImageVectors(id)
	if err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	h := s.Index.Header()
	query := make([][]float32, h.Vectors)
	for v := range query {
		query[v] = vec[v*h.Dim : (v+1)*h.Dim]
	}
	s.answer(w, s.Index.Key(id), query, k)
}

func (s *Server) answer(w http.ResponseWriter, q string, query [][]float32, k int) {
	hits, err := s.Index.Search(query, k, s.Options)
	if err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	ans := Answer{Query: q, Results: make([]Result, len(hits))}
	for i, h := range hits {
		id := int(h.Row)
		ans.Results[i] = Result{Input: h.Key, Score: h.Score, ID: id, Caption: s.caption(id), Image: fmt.Sprintf("/image/%d", id)}
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(ans)
}

// caption is image id's caption from the index, else from Captions.
func (s *Server) caption(id int) string {
	if c := s.Index.Caption(id); c != "" {
		return c
	}
	return s.Captions[s.Index.Key(id)]
}

func (s *Server) imageID(v string) (int, error) {
	id, err := strconv.Atoi(v)
	if err != nil || id < 0 || id >= s.Index.Len() {
		return 0, fmt.Errorf("image %q: want an index id from 0 to %d", v, s.Index.Len()-1)
	}
	return id, nil
}

func (s *Server) thumbnail(w http.ResponseWriter, r *http.Request) {
	id, err := s.imageID(r.PathValue("id"))
	if err != nil {
		httpError(w, http.StatusNotFound, err)
		return
	}
	s.once.Do(func() { s.proc, s.procErr = imageproc.New(imageproc.DefaultConfig(), imageproc.Options{}) })
	if s.procErr != nil {
		httpError(w, http.StatusInternalServerError, s.procErr)
		return
	}
	key := s.Index.Key(id)
	data, err := readImage(r.Context(), key, s.Index.Source(id))
	if err == nil {
		var img image.Image
		img, err = s.proc.DecodeBytes(key, data)
		if err == nil {
			size := s.ThumbSize
			if size <= 0 {
				size = 256
			}
			var buf bytes.Buffer
			if err = jpeg.Encode(&buf, report.Fit(img, size), &jpeg.Options{Quality: 82}); err == nil {
				w.Header().Set("Content-Type", "image/jpeg")
				w.Header().Set("Cache-Control", "max-age=3600")
				w.Write(buf.Bytes())
				return
			}
		}
	}
	if s.Log != nil {
		s.Log.Warn("thumbnail", "image", key, "err", err)
	}
	httpError(w, http.StatusNotFound, fmt.Errorf("image %s: %w", key, err))
}

// readImage reads an indexed image: from its source when the table
// recorded one (a URL, a path or s3:// location, or tar#member), else
// from its key taken as a path.
func readImage(ctx context.Context, key, source string) ([]byte, error) {
	if source == "" {
		source = key
	}
	if sharding.IsURL(source) {
		return fetch.New(fetch.Config{}).Fetch(ctx, source)
	}
	location, member, inTar := strings.Cut(source, "#")
	root, objKey, err := sharding.SplitLocation(location)
	if err != nil {
		return nil, err
	}
	store, err := storage.Open(ctx, root, storage.ConfigFromEnv())
	if err != nil {
		return nil, err
	}
	data, err := store.Read(ctx, objKey)
	if err != nil || !inTar {
		return data, err
	}
	return sharding.TarMember(bytes.NewReader(data), member)
}

func httpError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}
