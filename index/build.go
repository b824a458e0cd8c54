package index

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"os"
	"unsafe"

	"blipflow/model/blas"
)

// Params tunes an index build. Zero values pick the defaults.
type Params struct {
	// Lists is the number of inverted lists (coarse k-means centroids).
	// Default: about the square root of the number of vectors.
	Lists int
	// SubVectors is the number of product-quantiser sub-vectors, each coded
	// in one byte; it must divide the dimension. Default: Dim/8.
	SubVectors int
	// TrainVectors is how many vectors, sampled uniformly, train the
	// quantisers. Default 131072.
	TrainVectors int
	// Iterations of k-means. Default 10.
	Iterations int
	// Seed makes builds reproducible.
	Seed uint64
}

// Info is what an index keeps about an image besides its key, for display.
type Info struct {
	Source  string // where the image was read from (results tables' source column)
	Caption string // its first caption, when a captioning job wrote one
}

// Builder writes an index file. Add streams images into it (their full
// vectors go straight to the file, a uniform sample is kept for training);
// Close trains the quantisers, encodes every vector and writes the lists.
type Builder struct {
	path, tmp string
	meta      Meta
	params    Params
	f         *os.File
	w         *bufio.Writer
	rng       *rand.Rand
	width     int

	keys, sources, captions []string
	crcs                    []uint32
	sample                  []float32 // reservoir of training vectors
	seen                    int       // vectors offered to the reservoir
	err                     error
}

// Create starts an index at path (written to path+".tmp" and renamed on
// Close) for embeddings described by meta.
func Create(path string, meta Meta, p Params) (*Builder, error) {
	if meta.Vectors < 1 || meta.Dim < 1 {
		return nil, fmt.Errorf("index %s: embedding shape %d×%d: want positive sizes", path, meta.Vectors, meta.Dim)
	}
	if p.SubVectors == 0 {
		p.SubVectors = max(1, meta.Dim/8)
		for meta.Dim%p.SubVectors != 0 {
			p.SubVectors--
		}
	}
	if p.SubVectors < 1 || meta.Dim%p.SubVectors != 0 {
		return nil, fmt.Errorf("index %s: %d sub-vectors do not divide dimension %d", path, p.SubVectors, meta.Dim)
	}
	if p.Lists < 0 {
		return nil, fmt.Errorf("index %s: %d lists", path, p.Lists)
	}
	if p.TrainVectors <= 0 {
		p.TrainVectors = 1 << 17
	}
	if p.Iterations <= 0 {
		p.Iterations = 10
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	if _, err := f.Seek(headerSize, 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("index %s: %w", tmp, err)
	}
	return &Builder{
		path: path, tmp: tmp, meta: meta, params: p, f: f, w: bufio.NewWriterSize(f, 1<<20),
		rng: rand.New(rand.NewPCG(p.Seed, 0x1d3)), width: meta.Vectors * meta.Dim,
	}, nil
}

// Len is the number of images added so far.
func (b *Builder) Len() int { return len(b.keys) }

// Add appends one image: its key, display info and flattened vectors
// (Meta.Vectors×Meta.Dim floats, row-major).
func (b *Builder) Add(key string, info Info, vectors []float32) error {
	if b.err != nil {
		return b.err
	}
	if len(vectors) != b.width {
		return fmt.Errorf("index %s: image %q has %d floats, the index %d×%d = %d", b.path, key, len(vectors), b.meta.Vectors, b.meta.Dim, b.width)
	}
	raw := f32bytes(vectors)
	if _, err := b.w.Write(raw); err != nil {
		b.err = fmt.Errorf("index %s: %w", b.tmp, err)
		return b.err
	}
	b.crcs = append(b.crcs, crc32.Checksum(raw, castagnoli))
	b.keys = append(b.keys, key)
	b.sources = append(b.sources, info.Source)
	b.captions = append(b.captions, info.Caption)
	d := b.meta.Dim
	for v := range b.meta.Vectors {
		row := vectors[v*d : (v+1)*d]
		switch n := b.params.TrainVectors; {
		case b.seen < n:
			b.sample = append(b.sample, row...)
		default:
			if j := b.rng.IntN(b.seen + 1); j < n {
				copy(b.sample[j*d:(j+1)*d], row)
			}
		}
		b.seen++
	}
	return nil
}

// Abort removes the partial file.
func (b *Builder) Abort() {
	b.f.Close()
	os.Remove(b.tmp)
}

// Close trains the quantisers on the sample, encodes every vector into its
// list, writes all sections and the header, and renames the file into place.
func (b *Builder) Close() error {
	if err := b.finish(); err != nil {
		b.Abort()
		return err
	}
	return nil
}

func (b *Builder) finish() error {
	if b.err != nil {
		return b.err
	}
	if err := b.w.Flush(); err != nil {
		return fmt.Errorf("index %s: %w", b.tmp, err)
	}
	n, d, m := len(b.keys), b.meta.Dim, b.params.SubVectors
	h := &Header{Meta: b.meta, Images: n}
	h.sections = append(h.sections, section{id: secVectors, offset: headerSize, length: uint64(n * b.width * 4)})
	end := int64(headerSize + n*b.width*4)
	off := align(end)
	put := func(id uint32, data []byte) error {
		if _, err := b.f.WriteAt(data, off); err != nil {
			return fmt.Errorf("index %s: write %s: %w", b.tmp, sectionNames[id], err)
		}
		h.sections = append(h.sections, section{id: id, offset: uint64(off), length: uint64(len(data)), crc: crc32.Checksum(data, castagnoli)})
		end = off + int64(len(data))
		off = align(end)
		return nil
	}
	var cents, books []float32
	var starts []uint64
	var ids []uint32
	var codes []byte
	if n > 0 {
		bk, _, err := blas.Default()
		if err != nil {
			return fmt.Errorf("index: %w", err)
		}
		nvec := n * b.meta.Vectors
		ns := len(b.sample) / d
		lists := b.params.Lists
		if lists == 0 {
			lists = int(math.Round(math.Sqrt(float64(nvec))))
			lists = max(1, min(lists, ns/32))
		}
		lists = min(lists, ns)
		h.Lists, h.SubVectors = lists, m
		cents = kmeans(bk, b.sample, ns, d, lists, b.params.Iterations, b.rng)
		// 128 points per codebook entry train a product quantiser well
		// (FAISS samples 256); more only costs time.
		pqSample := min(ns, 128*256)
		books = trainPQ(bk, b.sample, pqSample, d, m, cents, lists, b.params.Iterations, b.rng)
		starts, ids, codes, err = b.encode(bk, cents, lists, books, m)
		if err != nil {
			return err
		}
	}
	crcBytes := make([]byte, 4*n)
	for i, c := range b.crcs {
		binary.LittleEndian.PutUint32(crcBytes[4*i:], c)
	}
	startBytes := make([]byte, 8*len(starts))
	for i, s := range starts {
		binary.LittleEndian.PutUint64(startBytes[8*i:], s)
	}
	for _, s := range []struct {
		id   uint32
		data []byte
	}{
		{secVecCRC, crcBytes},
		{secCentroids, f32bytes(cents)},
		{secCodebooks, f32bytes(books)},
		{secListStart, startBytes},
		{secListIDs, u32bytes(ids)},
		{secListCodes, codes},
		{secKeys, stringTable(b.keys)},
		{secSources, stringTable(b.sources)},
		{secCaptions, stringTable(b.captions)},
	} {
		if err := put(s.id, s.data); err != nil {
			return err
		}
	}
	page, err := h.marshal()
	if err != nil {
		return fmt.Errorf("index %s: %w", b.path, err)
	}
	if _, err := b.f.WriteAt(page, 0); err != nil {
		return fmt.Errorf("index %s: write header: %w", b.tmp, err)
	}
	if err := b.f.Truncate(end); err != nil {
		return fmt.Errorf("index %s: %w", b.tmp, err)
	}
	if err := b.f.Sync(); err != nil {
		return fmt.Errorf("index %s: %w", b.tmp, err)
	}
	if err := b.f.Close(); err != nil {
		return fmt.Errorf("index %s: %w", b.tmp, err)
	}
	if err := os.Rename(b.tmp, b.path); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	return nil
}

// encodeChunk is the number of images read back and encoded at a time.
const encodeChunk = 256

// encode reads the vectors back from the file, assigns each to its nearest
// centroid, codes its residual with the product quantiser and groups the
// entries by list (in image order within a list).
func (b *Builder) encode(bk blas.Backend, cents []float32, lists int, books []float32, m int) ([]uint64, []uint32, []byte, error) {
	n, v, d := len(b.keys), b.meta.Vectors, b.meta.Dim
	nvec := n * v
	listOf := make([]int32, nvec)
	flatCodes := make([]byte, nvec*m)
	coarse := newAssigner(bk, cents, lists, d)
	dsub := d / m
	subs := make([]*assigner, m)
	for s := range m {
		subs[s] = newAssigner(bk, books[s*256*dsub:(s+1)*256*dsub], 256, dsub)
	}
	buf := make([]float32, encodeChunk*b.width)
	subOut := make([]int32, encodeChunk*v)
	for lo := 0; lo < n; lo += encodeChunk {
		imgs := min(encodeChunk, n-lo)
		x := buf[:imgs*b.width]
		if _, err := b.f.ReadAt(f32bytes(x), headerSize+int64(lo*b.width*4)); err != nil {
			return nil, nil, nil, fmt.Errorf("index %s: read back vectors: %w", b.tmp, err)
		}
		rows := imgs * v
		coarse.assign(x, rows, d, listOf[lo*v:])
		for r := range rows {
			c := cents[int(listOf[lo*v+r])*d:][:d]
			row := x[r*d : (r+1)*d]
			for t := range row {
				row[t] -= c[t]
			}
		}
		for s := range m {
			subs[s].assign(x[s*dsub:], rows, d, subOut[:rows])
			for r := range rows {
				flatCodes[(lo*v+r)*m+s] = byte(subOut[r])
			}
		}
	}
	starts := make([]uint64, lists+1)
	for _, l := range listOf {
		starts[l+1]++
	}
	for l := range lists {
		starts[l+1] += starts[l]
	}
	next := append([]uint64(nil), starts[:lists]...)
	ids := make([]uint32, nvec)
	codes := make([]byte, nvec*m)
	for i, l := range listOf {
		e := next[l]
		next[l]++
		ids[e] = uint32(i / v)
		copy(codes[int(e)*m:(int(e)+1)*m], flatCodes[i*m:(i+1)*m])
	}
	return starts, ids, codes, nil
}

// trainPQ trains m codebooks of 256 centroids on the residuals of the
// sample to their nearest coarse centroid.
func trainPQ(bk blas.Backend, sample []float32, ns, d, m int, cents []float32, lists, iters int, rng *rand.Rand) []float32 {
	assign := make([]int32, ns)
	newAssigner(bk, cents, lists, d).assign(sample, ns, d, assign)
	dsub := d / m
	books := make([]float32, m*256*dsub)
	sub := make([]float32, ns*dsub)
	for s := range m {
		for i := range ns {
			c := cents[int(assign[i])*d+s*dsub:][:dsub]
			x := sample[i*d+s*dsub:][:dsub]
			for t := range dsub {
				sub[i*dsub+t] = x[t] - c[t]
			}
		}
		copy(books[s*256*dsub:], kmeans(bk, sub, ns, dsub, 256, iters, rng))
	}
	return books
}

// stringTable encodes strings as (n+1) uint64 offsets followed by their bytes.
func stringTable(ss []string) []byte {
	total := 0
	for _, s := range ss {
		total += len(s)
	}
	out := make([]byte, 8*(len(ss)+1), 8*(len(ss)+1)+total)
	pos := uint64(0)
	for i, s := range ss {
		binary.LittleEndian.PutUint64(out[8*i:], pos)
		pos += uint64(len(s))
	}
	binary.LittleEndian.PutUint64(out[8*len(ss):], pos)
	for _, s := range ss {
		out = append(out, s...)
	}
	return out
}

func align(off int64) int64 { return (off + sectionAlign - 1) / sectionAlign * sectionAlign }

// f32bytes views floats as their little-endian bytes (the machine's order;
// Open refuses big-endian machines).
func f32bytes(x []float32) []byte {
	if len(x) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&x[0])), 4*len(x))
}

func u32bytes(x []uint32) []byte {
	if len(x) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&x[0])), 4*len(x))
}

var errBigEndian = errors.New("index files are little-endian; this machine is big-endian")
