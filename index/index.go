// Package index is an approximate-nearest-neighbour index over multi-vector
// image embeddings (BLIP-2's ITC embeddings: V query vectors of D floats per
// image, similarity to a text = the best query's dot product).
//
// The structure is IVF-PQ (Jégou et al., "Product quantization for nearest
// neighbor search", 2011) over all query vectors of all images, with
// candidate images gathered from the probed lists and re-ranked exactly, as
// multi-vector retrieval systems do (ColBERTv2/PLAID, Santhanam et al.
// 2022): a k-means coarse quantiser splits the vectors into lists; each list
// entry stores the image id and a product-quantised code of the vector's
// residual (M bytes). A query scores the probed entries with a lookup table
// (inner products are additive over sub-vectors, so one table serves every
// list), keeps each image's best approximate score, and re-ranks the best
// candidates exactly over their full vectors, which the file also holds.
//
// The file is memory-mapped; see format.go for its layout. Sections other
// than the full vectors are verified by checksum at Open; each image's full
// vectors are verified (once) the first time a query reads them.
package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"blipflow/model/search"
)

// Index is an open, memory-mapped index file. Its methods are safe for
// concurrent use.
type Index struct {
	path string
	h    *Header
	data []byte // the mapping (nil for an empty file region)

	vectors   []float32
	vecCRC    []uint32
	centroids []float32
	codebooks []float32
	starts    []uint64
	ids       []uint32
	codes     []byte
	keys      stringTab
	sources   stringTab
	captions  stringTab
	verified  []atomic.Uint32 // bit i: image i's vectors passed their checksum

	scratch sync.Pool
}

// Open maps the index file at path and validates it.
func Open(path string) (*Index, error) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		return nil, errBigEndian
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	size := st.Size()
	if size < headerSize {
		return nil, fmt.Errorf("index %s: %d bytes, shorter than the %d-byte header: not an index or truncated", path, size, headerSize)
	}
	if size > math.MaxInt {
		return nil, fmt.Errorf("index %s: %d bytes: too large to map", path, size)
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("index %s: mmap: %w", path, err)
	}
	ix := &Index{path: path, data: data}
	if err := ix.load(); err != nil {
		unix.Munmap(data)
		return nil, fmt.Errorf("index %s: %w", path, err)
	}
	return ix, nil
}

// Close unmaps the file. The Index must not be used afterwards.
func (ix *Index) Close() error {
	if ix.data == nil {
		return nil
	}
	err := unix.Munmap(ix.data)
	ix.data = nil
	return err
}

// load parses the header and checks every section against it.
func (ix *Index) load() error {
	h, err := ParseHeader(ix.data[:headerSize], int64(len(ix.data)))
	if err != nil {
		return err
	}
	ix.h = h
	n, v, d, l, m := h.Images, h.Vectors, h.Dim, h.Lists, h.SubVectors
	bytesOf := func(id uint32, check bool) ([]byte, error) {
		s := h.section(id)
		b := ix.data[s.offset : s.offset+s.length]
		if check {
			if got := crc32.Checksum(b, castagnoli); got != s.crc {
				return nil, fmt.Errorf("section %s: checksum %08x, stored %08x: the file is corrupt", sectionNames[id], got, s.crc)
			}
		}
		return b, nil
	}
	wantLen := func(id uint32, want uint64) error {
		if got := h.section(id).length; got != want {
			return fmt.Errorf("section %s has %d bytes, the header implies %d (corrupt file)", sectionNames[id], got, want)
		}
		return nil
	}
	nvec := uint64(n) * uint64(v)
	sizes := map[uint32]uint64{secVectors: nvec * uint64(d) * 4, secVecCRC: uint64(n) * 4}
	if n > 0 {
		sizes[secCentroids] = uint64(l) * uint64(d) * 4
		sizes[secCodebooks] = uint64(m) * 256 * uint64(d/m) * 4
		sizes[secListStart] = uint64(l+1) * 8
		sizes[secListIDs] = nvec * 4
		sizes[secListCodes] = nvec * uint64(m)
	} else {
		for _, id := range []uint32{secCentroids, secCodebooks, secListStart, secListIDs, secListCodes} {
			sizes[id] = 0
		}
	}
	for id, want := range sizes {
		if err := wantLen(id, want); err != nil {
			return err
		}
	}
	raw := map[uint32][]byte{}
	for id := range sectionNames {
		b, err := bytesOf(id, id != secVectors)
		if err != nil {
			return err
		}
		raw[id] = b
	}
	ix.vectors = viewF32(raw[secVectors])
	ix.vecCRC = viewU32(raw[secVecCRC])
	ix.centroids = viewF32(raw[secCentroids])
	ix.codebooks = viewF32(raw[secCodebooks])
	ix.ids = viewU32(raw[secListIDs])
	ix.codes = raw[secListCodes]
	if n > 0 {
		ix.starts = viewU64(raw[secListStart])
		if ix.starts[0] != 0 || ix.starts[l] != nvec {
			return fmt.Errorf("section list starts: lists span %d..%d, want 0..%d (corrupt file)", ix.starts[0], ix.starts[l], nvec)
		}
		for i := range l {
			if ix.starts[i] > ix.starts[i+1] {
				return fmt.Errorf("section list starts: list %d ends before it starts (corrupt file)", i)
			}
		}
		for _, id := range ix.ids {
			if id >= uint32(n) {
				return fmt.Errorf("section list ids: image %d of %d (corrupt file)", id, n)
			}
		}
	}
	for _, t := range []struct {
		id  uint32
		dst *stringTab
	}{{secKeys, &ix.keys}, {secSources, &ix.sources}, {secCaptions, &ix.captions}} {
		tab, err := parseStringTab(raw[t.id], n)
		if err != nil {
			return fmt.Errorf("section %s: %w", sectionNames[t.id], err)
		}
		*t.dst = tab
	}
	ix.verified = make([]atomic.Uint32, (n+31)/32)
	return nil
}

// Header returns the index's header: what it holds and how it was built.
func (ix *Index) Header() Header { return *ix.h }

// Len is the number of images.
func (ix *Index) Len() int { return ix.h.Images }

// Key returns image i's key, as its table wrote it.
func (ix *Index) Key(i int) string { return ix.keys.at(i) }

// Source returns where image i was read from ("" when its table did not say).
func (ix *Index) Source(i int) string { return ix.sources.at(i) }

// Caption returns image i's first caption ("" when its table had none).
func (ix *Index) Caption(i int) string { return ix.captions.at(i) }

// ImageVectors returns image i's full vectors (Vectors×Dim floats,
// row-major), a view of the mapping, after checking their checksum the
// first time they are read.
func (ix *Index) ImageVectors(i int) ([]float32, error) {
	if i < 0 || i >= ix.h.Images {
		return nil, fmt.Errorf("index %s: image %d of %d", ix.path, i, ix.h.Images)
	}
	w := ix.h.Vectors * ix.h.Dim
	vec := ix.vectors[i*w : (i+1)*w : (i+1)*w]
	word, bit := &ix.verified[i/32], uint32(1)<<(i%32)
	if word.Load()&bit == 0 {
		if crc32.Checksum(f32bytes(vec), castagnoli) != ix.vecCRC[i] {
			return nil, fmt.Errorf("index %s: the vectors of image %d (%q) fail their checksum: the file is corrupt", ix.path, i, ix.Key(i))
		}
		word.Or(bit)
	}
	return vec, nil
}

// SearchOptions tunes a query. Zero values pick the defaults.
type SearchOptions struct {
	// Probe is the number of lists scanned per query vector. Default:
	// DefaultProbe.
	Probe int
	// Rerank is the number of candidate images re-ranked exactly. Default:
	// max(DefaultRerank, k).
	Rerank int
}

// Defaults of SearchOptions, chosen with `worker index-bench` (README).
const (
	DefaultProbe  = 32
	DefaultRerank = 256
)

// Search returns the k images most similar to a query given as one or more
// vectors of Dim floats (a text: one; an image: its V query vectors). An
// image's score is the largest dot product between one of the query's
// vectors and one of its own, computed exactly over the full vectors; Row
// is the image's position in the index. Candidates come from the Probe
// lists nearest to each query vector.
func (ix *Index) Search(query [][]float32, k int, opts SearchOptions) ([]search.Hit, error) {
	if len(query) == 0 {
		return nil, errors.New("index search: no query vectors")
	}
	if k < 1 {
		return nil, fmt.Errorf("index search: top %d: want at least 1", k)
	}
	for i, q := range query {
		if len(q) != ix.h.Dim {
			return nil, fmt.Errorf("index search: query vector %d has %d values, the index %s holds vectors of %d", i, len(q), ix.path, ix.h.Dim)
		}
	}
	if ix.h.Images == 0 {
		return nil, nil
	}
	probe := opts.Probe
	if probe <= 0 {
		probe = DefaultProbe
	}
	probe = min(probe, ix.h.Lists)
	rerank := max(opts.Rerank, k)
	if opts.Rerank <= 0 {
		rerank = max(DefaultRerank, k)
	}
	s := ix.getScratch()
	defer ix.scratch.Put(s)
	for _, q := range query {
		ix.scan(s, q, probe)
	}
	cands := s.candidates(rerank)
	top := search.NewTopK(k)
	for _, img := range cands {
		vec, err := ix.ImageVectors(int(img))
		if err != nil {
			return nil, err
		}
		best := float32(math.Inf(-1))
		for _, q := range query {
			best = max(best, search.MaxDot(vec, q))
		}
		top.Offer(search.Hit{Key: ix.Key(int(img)), Score: best, Row: int64(img)})
	}
	return top.Hits(), nil
}

// scratch is one query's working memory.
type scratch struct {
	best    []float32      // per image: best approximate score so far, -Inf when untouched
	touched []int32        // images whose best is set
	coarse  []float32      // per list: centroid · query
	order   []int32        // list indices, for choosing the probed ones
	lut     [][256]float32 // per sub-vector: its codebook entries · the query's sub-vector
}

func (ix *Index) getScratch() *scratch {
	if s, ok := ix.scratch.Get().(*scratch); ok {
		return s
	}
	s := &scratch{
		best:   make([]float32, ix.h.Images),
		coarse: make([]float32, ix.h.Lists),
		order:  make([]int32, ix.h.Lists),
		lut:    make([][256]float32, ix.h.SubVectors),
	}
	for i := range s.best {
		s.best[i] = float32(math.Inf(-1))
	}
	return s
}

// scan scores the entries of the probe lists nearest to q and raises each
// image's best approximate score.
func (ix *Index) scan(s *scratch, q []float32, probe int) {
	d, m := ix.h.Dim, ix.h.SubVectors
	dsub := d / m
	for l := range s.coarse {
		s.coarse[l] = dot(ix.centroids[l*d:(l+1)*d], q)
		s.order[l] = int32(l)
	}
	if probe < len(s.order) {
		selectTop(s.order, s.coarse, probe)
	}
	for sub := range m {
		qs := q[sub*dsub : (sub+1)*dsub]
		book := ix.codebooks[sub*256*dsub : (sub+1)*256*dsub]
		lut := &s.lut[sub]
		for j := range lut {
			lut[j] = dot(book[j*dsub:(j+1)*dsub], qs)
		}
	}
	lut := s.lut
	for _, l := range s.order[:probe] {
		base := s.coarse[l]
		lo, hi := ix.starts[l], ix.starts[l+1]
		ids := ix.ids[lo:hi]
		codes := ix.codes[lo*uint64(m) : hi*uint64(m)]
		for e, id := range ids {
			c := codes[e*m : (e+1)*m : (e+1)*m]
			score := base
			for sub, code := range c {
				score += lut[sub][code]
			}
			if b := s.best[id]; score > b {
				if math.IsInf(float64(b), -1) {
					s.touched = append(s.touched, int32(id))
				}
				s.best[id] = score
			}
		}
	}
}

// candidates returns the (at most) r touched images with the best
// approximate scores and resets the scratch for the next query.
func (s *scratch) candidates(r int) []int32 {
	out := slices.Clone(s.touched)
	if len(out) > r {
		selectTop(out, s.best, r)
		out = out[:r]
	}
	for _, id := range s.touched {
		s.best[id] = float32(math.Inf(-1))
	}
	s.touched = s.touched[:0]
	return out
}

// selectTop reorders idx so that its first k entries are those with the
// largest score[idx[i]] (in no particular order): quickselect.
func selectTop(idx []int32, score []float32, k int) {
	lo, hi := 0, len(idx)-1
	for lo < hi {
		p := score[idx[(lo+hi)/2]]
		i, j := lo, hi
		for i <= j {
			for score[idx[i]] > p {
				i++
			}
			for score[idx[j]] < p {
				j--
			}
			if i <= j {
				idx[i], idx[j] = idx[j], idx[i]
				i++
				j--
			}
		}
		switch {
		case k-1 <= j:
			hi = j
		case k-1 >= i:
			lo = i
		default:
			return
		}
	}
}

// stringTab is a section of (n+1) uint64 offsets followed by string bytes.
type stringTab struct {
	offsets []byte
	bytes   []byte
}

func parseStringTab(b []byte, n int) (stringTab, error) {
	head := uint64(n+1) * 8
	if uint64(len(b)) < head {
		return stringTab{}, fmt.Errorf("%d bytes, too short for %d offsets (corrupt file)", len(b), n+1)
	}
	t := stringTab{offsets: b[:head], bytes: b[head:]}
	prev := uint64(0)
	for i := 0; i <= n; i++ {
		o := binary.LittleEndian.Uint64(t.offsets[8*i:])
		if o < prev || o > uint64(len(t.bytes)) || (i == 0 && o != 0) {
			return stringTab{}, fmt.Errorf("string %d at offset %d is out of order or past the end (corrupt file)", i, o)
		}
		prev = o
	}
	return t, nil
}

func (t stringTab) at(i int) string {
	lo := binary.LittleEndian.Uint64(t.offsets[8*i:])
	hi := binary.LittleEndian.Uint64(t.offsets[8*i+8:])
	return string(t.bytes[lo:hi])
}

func viewF32(b []byte) []float32 {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4)
}

func viewU32(b []byte) []uint32 {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*uint32)(unsafe.Pointer(&b[0])), len(b)/4)
}

func viewU64(b []byte) []uint64 {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*uint64)(unsafe.Pointer(&b[0])), len(b)/8)
}

// CheckModel refuses an index whose embeddings another model made, or of
// another kind or dimension, than the query's (fingerprint, kind, dim of
// model), naming both.
func (ix *Index) CheckModel(model, fingerprint, kind string, dim int) error {
	h := ix.h
	if h.Fingerprint != fingerprint || h.Kind != kind || h.Dim != dim {
		return fmt.Errorf("index %s holds %s embeddings of model %s (checkpoint %s, %d values per vector); the queries are %s embeddings of model %s (checkpoint %s, %d values per vector)",
			ix.path, h.Kind, h.Model, h.Fingerprint, h.Dim, kind, model, fingerprint, dim)
	}
	return nil
}

// RangeVectors returns the full vectors of images lo..lo+n-1, end to end
// (a view of the mapping), after checking each image's checksum.
func (ix *Index) RangeVectors(lo, n int) ([]float32, error) {
	if lo < 0 || n < 0 || lo+n > ix.h.Images {
		return nil, fmt.Errorf("index %s: images %d..%d of %d", ix.path, lo, lo+n, ix.h.Images)
	}
	for i := lo; i < lo+n; i++ {
		if _, err := ix.ImageVectors(i); err != nil {
			return nil, err
		}
	}
	w := ix.h.Vectors * ix.h.Dim
	return ix.vectors[lo*w : (lo+n)*w : (lo+n)*w], nil
}
