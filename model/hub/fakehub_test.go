package hub

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Host names the fake Hub and its CDN answer to. The CDN is a subdomain of
// the Hub, the case where Go's client alone would forward Authorization.
const (
	fakeHubHost = "hub.test"
	fakeCDNHost = "cdn-lfs.hub.test"
)

// fakeFile is one file of the fake repository.
type fakeFile struct {
	data []byte
	// lfs files are redirected to the CDN and identified by their sha256.
	lfs bool
	// tag is what the Hub reports as the etag: sha256 for LFS, git blob sha1 otherwise.
	tag string
}

// newFakeFile computes the etag of a repository file.
func newFakeFile(data []byte, lfs bool) fakeFile {
	if lfs {
		sum := sha256.Sum256(data)
		return fakeFile{data: data, lfs: true, tag: hex.EncodeToString(sum[:])}
	}
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(data))
	h.Write(data)
	return fakeFile{data: data, tag: hex.EncodeToString(h.Sum(nil))}
}

// etag is what the Hub reports for the file.
func (f fakeFile) etag() string { return f.tag }

// seenRequest is one request a fake server answered.
type seenRequest struct {
	host, method, path, auth, rangeHeader string
}

// fakeHub serves the Hub's URL layout for one repository, with a separate
// CDN server for LFS files and switches for the failures to test.
type fakeHub struct {
	repo   string
	commit string
	// revisions maps branch and tag names (and the commit) to the commit.
	revisions map[string]string
	files     map[string]fakeFile

	mu sync.Mutex
	// requireToken, when set, makes every Hub request without this bearer
	// token fail with 401 GatedRepo.
	requireToken string
	// apiStatus, when set, is the answer to the revision API.
	apiStatus int
	// apiFailures is how many 503 answers the revision API gives first.
	apiFailures int
	// cutAfter drops the connection after that many body bytes of the next
	// cutTimes CDN downloads of the named file.
	cutAfter map[string]int
	cutTimes int
	// ignoreRange makes the CDN answer 200 with the whole file to Range requests.
	ignoreRange bool
	// cdnForbidden is how many 403 answers (an expired signed URL) the CDN gives first.
	cdnForbidden int
	// corrupt makes the CDN serve altered bytes of the named files.
	corrupt  map[string]bool
	requests []seenRequest

	hub, cdn *httptest.Server
}

// newFakeHub starts a fake Hub for a BLIP-2-like repository: metadata
// files, a sharded safetensors checkpoint and weights in other formats that
// must not be downloaded.
func newFakeHub(t testing.TB) *fakeHub {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	randomBytes := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	index, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"total_size": 400000},
		"weight_map": map[string]string{
			"vision_model.embeddings.patch_embedding.weight": "model-00001-of-00002.safetensors",
			"qformer.layernorm.weight":                       "model-00001-of-00002.safetensors",
			"language_model.lm_head.weight":                  "model-00002-of-00002.safetensors",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	h := &fakeHub{
		repo:   "Salesforce/blip2-opt-2.7b",
		commit: "51572668da0eb669e01a189dc22abe6088589a24",
		files: map[string]fakeFile{
			".gitattributes":                   newFakeFile([]byte("*.safetensors filter=lfs\n"), false),
			"README.md":                        newFakeFile([]byte("# BLIP-2\n"), false),
			"config.json":                      newFakeFile([]byte(`{"model_type":"blip-2"}`), false),
			"generation_config.json":           newFakeFile([]byte(`{"max_length":20}`), false),
			"preprocessor_config.json":         newFakeFile([]byte(`{"image_size":224}`), false),
			"processor_config.json":            newFakeFile([]byte(`{"num_query_tokens":32}`), false),
			"tokenizer.json":                   newFakeFile([]byte(`{"model":{"type":"BPE"}}`), false),
			"tokenizer_config.json":            newFakeFile([]byte(`{"bos_token":"</s>"}`), false),
			"special_tokens_map.json":          newFakeFile([]byte(`{}`), false),
			"vocab.json":                       newFakeFile([]byte(`{"a":0}`), false),
			"merges.txt":                       newFakeFile([]byte("#version: 0.2\n"), false),
			"model.safetensors.index.json":     newFakeFile(index, false),
			"model-00001-of-00002.safetensors": newFakeFile(randomBytes(150000), true),
			"model-00002-of-00002.safetensors": newFakeFile(randomBytes(250000), true),
			"pytorch_model.bin.index.json":     newFakeFile([]byte(`{}`), false),
			"pytorch_model-00001-of-00002.bin": newFakeFile(randomBytes(1000), true),
			"tf_model.h5":                      newFakeFile(randomBytes(1000), true),
			"flax_model.msgpack":               newFakeFile(randomBytes(1000), true),
		},
		cutAfter: map[string]int{},
		corrupt:  map[string]bool{},
	}
	h.revisions = map[string]string{"main": h.commit, "v1.0": h.commit, h.commit: h.commit}
	h.hub = httptest.NewServer(h.hubHandler())
	h.cdn = httptest.NewServer(h.cdnHandler())
	t.Cleanup(h.hub.Close)
	t.Cleanup(h.cdn.Close)
	return h
}

// client reaches the fake servers under their host names.
func (h *fakeHub) client() *http.Client {
	hubAddr := h.hub.Listener.Addr().String()
	cdnAddr := h.cdn.Listener.Addr().String()
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			switch host {
			case fakeHubHost:
				return dialer.DialContext(ctx, network, hubAddr)
			case fakeCDNHost:
				return dialer.DialContext(ctx, network, cdnAddr)
			}
			return nil, fmt.Errorf("fake hub: no host %s", host)
		},
	}}
}

// options returns Resolve options aimed at the fake Hub with fast retries.
func (h *fakeHub) options() Options {
	return Options{
		Endpoint:     "http://" + fakeHubHost,
		HTTPClient:   h.client(),
		Attempts:     3,
		RetryBackoff: time.Millisecond,
	}
}

// seen returns the requests answered so far.
func (h *fakeHub) seen() []seenRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]seenRequest(nil), h.requests...)
}

// record notes a request.
func (h *fakeHub) record(host string, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.requests = append(h.requests, seenRequest{
		host: host, method: r.Method, path: r.URL.Path,
		auth: r.Header.Get("Authorization"), rangeHeader: r.Header.Get("Range"),
	})
}

// hubError answers with the Hub's error headers.
func hubError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("X-Error-Code", code)
	w.Header().Set("X-Error-Message", code)
	http.Error(w, code, status)
}

// authorized applies requireToken.
func (h *fakeHub) authorized(w http.ResponseWriter, r *http.Request) bool {
	h.mu.Lock()
	want := h.requireToken
	h.mu.Unlock()
	if want != "" && r.Header.Get("Authorization") != "Bearer "+want {
		hubError(w, http.StatusUnauthorized, "GatedRepo")
		return false
	}
	return true
}

func (h *fakeHub) hubHandler() http.Handler {
	api, files := http.NewServeMux(), http.NewServeMux()
	api.HandleFunc("GET /api/models/{org}/{name}/revision/{rev}", func(w http.ResponseWriter, r *http.Request) {
		h.record(fakeHubHost, r)
		h.mu.Lock()
		status := h.apiStatus
		if h.apiFailures > 0 {
			h.apiFailures--
			status = http.StatusServiceUnavailable
		}
		h.mu.Unlock()
		switch {
		case status != 0:
			hubError(w, status, http.StatusText(status))
			return
		case !h.authorized(w, r):
			return
		case r.PathValue("org")+"/"+r.PathValue("name") != h.repo:
			hubError(w, http.StatusNotFound, "RepoNotFound")
			return
		}
		commit, ok := h.revisions[r.PathValue("rev")]
		if !ok {
			hubError(w, http.StatusNotFound, "RevisionNotFound")
			return
		}
		type sibling struct {
			RFilename string `json:"rfilename"`
		}
		var siblings []sibling
		for name := range h.files {
			siblings = append(siblings, sibling{name})
		}
		json.NewEncoder(w).Encode(map[string]any{"id": h.repo, "sha": commit, "siblings": siblings})
	})
	files.HandleFunc("GET /{org}/{name}/resolve/{rev}/{file...}", func(w http.ResponseWriter, r *http.Request) {
		h.record(fakeHubHost, r)
		if !h.authorized(w, r) {
			return
		}
		if r.PathValue("org")+"/"+r.PathValue("name") != h.repo {
			hubError(w, http.StatusNotFound, "RepoNotFound")
			return
		}
		commit, ok := h.revisions[r.PathValue("rev")]
		if !ok {
			hubError(w, http.StatusNotFound, "RevisionNotFound")
			return
		}
		file, ok := h.files[r.PathValue("file")]
		if !ok {
			hubError(w, http.StatusNotFound, "EntryNotFound")
			return
		}
		w.Header().Set("X-Repo-Commit", commit)
		if file.lfs {
			w.Header().Set("X-Linked-Etag", `"`+file.etag()+`"`)
			w.Header().Set("X-Linked-Size", fmt.Sprint(len(file.data)))
			w.Header().Set("Location", "http://"+fakeCDNHost+"/lfs/"+file.etag()+"?signature=abc")
			w.WriteHeader(http.StatusFound)
			return
		}
		w.Header().Set("ETag", `"`+file.etag()+`"`)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(file.data))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/") {
			api.ServeHTTP(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
}

func (h *fakeHub) cdnHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /lfs/{sha}", func(w http.ResponseWriter, r *http.Request) {
		h.record(fakeCDNHost, r)
		var name string
		for n, f := range h.files {
			if f.lfs && f.etag() == r.PathValue("sha") {
				name = n
			}
		}
		if name == "" {
			http.NotFound(w, r)
			return
		}
		data := h.files[name].data
		h.mu.Lock()
		if h.cdnForbidden > 0 {
			h.cdnForbidden--
			h.mu.Unlock()
			http.Error(w, "signature expired", http.StatusForbidden)
			return
		}
		if h.corrupt[name] {
			data = bytes.Clone(data)
			data[len(data)/2] ^= 0xff
		}
		if h.ignoreRange {
			r.Header.Del("Range")
		}
		var out http.ResponseWriter = w
		if limit, ok := h.cutAfter[name]; ok && h.cutTimes > 0 {
			h.cutTimes--
			out = &cuttingWriter{ResponseWriter: w, left: limit}
		}
		h.mu.Unlock()
		http.ServeContent(out, r, "", time.Time{}, bytes.NewReader(data))
	})
	return mux
}

// cuttingWriter drops the connection once it has written left body bytes,
// as a network failure mid-download would.
type cuttingWriter struct {
	http.ResponseWriter
	left int
}

func (c *cuttingWriter) Write(b []byte) (int, error) {
	if len(b) >= c.left {
		c.ResponseWriter.Write(b[:c.left])
		c.ResponseWriter.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
	c.left -= len(b)
	return c.ResponseWriter.Write(b)
}

// isolateEnv points the Hugging Face environment at a fresh temporary home
// and returns the hub cache folder inside it.
func isolateEnv(t testing.TB) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HF_HOME", home)
	for _, name := range []string{"HF_HUB_CACHE", "HF_TOKEN", "HF_TOKEN_PATH", "HF_HUB_OFFLINE", "HF_ENDPOINT"} {
		t.Setenv(name, "")
	}
	return filepath.Join(home, "hub")
}

// wantedFiles are the files Resolve must fetch from the fake repository.
var wantedFiles = []string{
	"config.json", "generation_config.json", "preprocessor_config.json", "processor_config.json",
	"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt",
	"model.safetensors.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
}
