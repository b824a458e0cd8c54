package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// fetcher downloads one model revision from the Hub into the cache.
type fetcher struct {
	settings     settings
	ref          Ref
	cache        repoCache
	endpointHost string
	// client follows redirects (dropping the token across hosts).
	client *http.Client
	// metaClient stops at redirects, whose headers carry LFS metadata.
	metaClient *http.Client
}

// newFetcher prepares the download of ref with settings s into cache.
func newFetcher(s settings, ref Ref, cache repoCache) *fetcher {
	host := ""
	if u, err := url.Parse(s.endpoint); err == nil {
		host = u.Host
	}
	return &fetcher{
		settings:     s,
		ref:          ref,
		cache:        cache,
		endpointHost: host,
		client:       withAuthStripping(s.client),
		metaClient:   withoutRedirects(s.client),
	}
}

// revisionInfo is the part of the Hub's model info that Resolve uses.
type revisionInfo struct {
	SHA      string `json:"sha"`
	Siblings []struct {
		RFilename string `json:"rfilename"`
	} `json:"siblings"`
}

// fetch downloads what the model needs and returns its snapshot folder.
func (f *fetcher) fetch(ctx context.Context) (string, error) {
	info, err := f.revisionInfo(ctx)
	if err != nil {
		return "", err
	}
	repoFiles := make(map[string]bool, len(info.Siblings))
	var names []string
	for _, s := range info.Siblings {
		repoFiles[s.RFilename] = true
		names = append(names, s.RFilename)
	}
	plan, err := planDownload(names)
	if err != nil {
		return "", fmt.Errorf("model %s: %w", f.ref, err)
	}
	snapshot := f.cache.snapshotDir(info.SHA)
	for _, name := range plan.files {
		if err := f.fetchFile(ctx, info.SHA, name); err != nil {
			return "", err
		}
	}
	if plan.index != "" {
		shards, err := shardNames(filepath.Join(snapshot, plan.index))
		if err != nil {
			return "", fmt.Errorf("model %s: %w", f.ref, err)
		}
		for _, shard := range shards {
			if !repoFiles[shard] {
				return "", fmt.Errorf("model %s: %s names shard %s, which the repository lacks", f.ref, plan.index, shard)
			}
			if err := f.fetchFile(ctx, info.SHA, shard); err != nil {
				return "", err
			}
		}
	}
	if !isCommitHash(f.ref.Revision) {
		if err := f.cache.writeRef(f.ref.Revision, info.SHA); err != nil {
			return "", fmt.Errorf("model %s: %w", f.ref, err)
		}
	}
	return snapshot, nil
}

// revisionInfo asks the Hub for the commit and file list of the revision.
func (f *fetcher) revisionInfo(ctx context.Context) (revisionInfo, error) {
	apiURL := fmt.Sprintf("%s/api/models/%s/revision/%s", f.settings.endpoint, f.ref.Repo, url.PathEscape(f.ref.Revision))
	var info revisionInfo
	err := f.retry(ctx, func() error {
		req, err := f.newRequest(ctx, http.MethodGet, apiURL)
		if err != nil {
			return err
		}
		resp, err := send(f.client, req)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return f.statusError(resp, "")
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
			return transientError{fmt.Errorf("model %s: decode %s: %w", f.ref, apiURL, err)}
		}
		return nil
	})
	if err != nil {
		var status *HTTPError
		switch {
		case errors.As(err, &status):
			return revisionInfo{}, err
		case ctx.Err() == nil:
			return revisionInfo{}, fmt.Errorf("model %s: %w at %s (check the network; set HF_ENDPOINT for a mirror, or HF_HUB_OFFLINE=1 to use only the local cache): %w",
				f.ref, ErrUnreachable, f.settings.endpoint, err)
		}
		return revisionInfo{}, fmt.Errorf("model %s: %w", f.ref, err)
	}
	if !isCommitHash(info.SHA) {
		return revisionInfo{}, fmt.Errorf("model %s: %s answered commit %q, want 40 hex digits", f.ref, apiURL, info.SHA)
	}
	return info, nil
}

// resolveURL is the Hub address of a file at a commit.
func (f *fetcher) resolveURL(commit, name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return fmt.Sprintf("%s/%s/resolve/%s/%s", f.settings.endpoint, f.ref.Repo, commit, strings.Join(parts, "/"))
}

// fetchFile makes snapshots/<commit>/<name> available, downloading its blob
// unless the cache already holds it.
func (f *fetcher) fetchFile(ctx context.Context, commit, name string) error {
	if !isSafeRepoPath(name) {
		return fmt.Errorf("model %s: file name %q leaves the snapshot folder", f.ref, name)
	}
	dst := filepath.Join(f.cache.snapshotDir(commit), filepath.FromSlash(name))
	if fileExists(dst) {
		return nil
	}
	fileURL := f.resolveURL(commit, name)
	meta, err := f.fileMeta(ctx, fileURL, name)
	if err != nil {
		return err
	}
	blob := f.cache.blobPath(meta.etag)
	if !fileExists(blob) {
		unlock, err := lockFile(ctx, f.cache.lockPath(meta.etag))
		if err != nil {
			return fmt.Errorf("model %s file %s: %w", f.ref, name, err)
		}
		defer unlock()
		// Another process may have finished it while we waited.
		if !fileExists(blob) {
			if err := f.downloadBlob(ctx, fileURL, name, meta, blob); err != nil {
				return err
			}
		}
	}
	return linkSnapshotFile(blob, dst)
}

// fileMeta describes a file as the Hub's resolve endpoint does.
type fileMeta struct {
	// etag names the blob: the sha256 for LFS files, the git blob hash otherwise.
	etag string
	// size is the file's length in bytes, -1 when the Hub gave none.
	size int64
}

// isLFS reports whether the etag is a sha256 that the content must match.
func (m fileMeta) isLFS() bool { return sha256Pattern.MatchString(m.etag) }

var (
	sha256Pattern = regexp.MustCompile(`^[0-9a-f]{64}$`)
	etagPattern   = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
)

// maxRelativeRedirects bounds the same-host redirects followed for a
// renamed repository.
const maxRelativeRedirects = 5

// fileMeta asks for a file's etag and size with a HEAD request that stops
// at the redirect to the CDN: that answer carries X-Linked-Etag and
// X-Linked-Size. Same-host redirects (a renamed repository) are followed.
func (f *fetcher) fileMeta(ctx context.Context, fileURL, name string) (fileMeta, error) {
	var meta fileMeta
	err := f.retry(ctx, func() error {
		target := fileURL
		for hop := 0; ; hop++ {
			req, err := f.newRequest(ctx, http.MethodHead, target)
			if err != nil {
				return err
			}
			resp, err := send(f.metaClient, req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			redirect := resp.StatusCode >= 300 && resp.StatusCode < 400
			if redirect && resp.Header.Get("X-Linked-Etag") == "" {
				next, err := req.URL.Parse(resp.Header.Get("Location"))
				if err == nil && next.Host == req.URL.Host && hop < maxRelativeRedirects {
					target = next.String()
					continue
				}
			}
			if resp.StatusCode != http.StatusOK && !redirect {
				return f.statusError(resp, name)
			}
			meta, err = parseFileMeta(resp.Header, redirect)
			if err != nil {
				return fmt.Errorf("model %s file %s: %s: %w", f.ref, name, target, err)
			}
			return nil
		}
	})
	if err != nil {
		var status *HTTPError
		if errors.As(err, &status) {
			return fileMeta{}, err
		}
		return fileMeta{}, fmt.Errorf("model %s file %s: %w", f.ref, name, err)
	}
	return meta, nil
}

// parseFileMeta reads the etag and size headers of a resolve answer. A
// redirect's own Content-Length is that of its body, so only X-Linked-Size
// counts there.
func parseFileMeta(h http.Header, redirect bool) (fileMeta, error) {
	etag := h.Get("X-Linked-Etag")
	if etag == "" {
		etag = h.Get("ETag")
	}
	etag = strings.Trim(strings.TrimPrefix(etag, "W/"), `"`)
	if etag == "" {
		return fileMeta{}, errors.New("no ETag or X-Linked-Etag header")
	}
	if !etagPattern.MatchString(etag) {
		return fileMeta{}, fmt.Errorf("etag %q is not a usable blob name", etag)
	}
	sizeHeader := h.Get("X-Linked-Size")
	if sizeHeader == "" && !redirect {
		sizeHeader = h.Get("Content-Length")
	}
	size := int64(-1)
	if sizeHeader != "" {
		n, err := strconv.ParseInt(sizeHeader, 10, 64)
		if err != nil || n < 0 {
			return fileMeta{}, fmt.Errorf("bad size header %q", sizeHeader)
		}
		size = n
	}
	return fileMeta{etag: etag, size: size}, nil
}

// discardBody drains a little of a body so the connection can be reused,
// then closes it.
func discardBody(body io.ReadCloser) {
	io.Copy(io.Discard, io.LimitReader(body, 4<<10))
	body.Close()
}
