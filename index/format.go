package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// File layout. The first headerSize bytes hold the header; sections follow,
// each starting on a sectionAlign boundary so that float32 and uint32
// sections can be viewed in place once the file is memory-mapped.
//
//	magic    [8]byte  "BLIPFIDX"
//	version  uint32   FormatVersion
//	bodyLen  uint32   length of body
//	body     [bodyLen]byte (see Header.marshal)
//	crc      uint32   CRC-32C of magic, version, bodyLen and body
//
// All integers are little-endian.
const (
	magic        = "BLIPFIDX"
	headerSize   = 4096
	sectionAlign = 4096
	// FormatVersion is the index file version this package writes and the
	// only one it reads.
	FormatVersion = 1
	// maxSections bounds the section table a header may declare.
	maxSections = 64
	// maxString bounds a header string (model names, fingerprints).
	maxString = 1024
)

// Section identifiers.
const (
	secVectors   uint32 = 1  // N×V×D float32: every image's full vectors, for the exact re-rank
	secVecCRC    uint32 = 2  // N uint32: CRC-32C of each image's vectors
	secCentroids uint32 = 3  // L×D float32: the coarse quantiser
	secCodebooks uint32 = 4  // M×256×(D/M) float32: the product quantiser
	secListStart uint32 = 5  // (L+1) uint64: where each list starts, in entries
	secListIDs   uint32 = 6  // N×V uint32: image id of each list entry
	secListCodes uint32 = 7  // N×V×M uint8: PQ code of each list entry's residual
	secKeys      uint32 = 8  // string table: image keys
	secSources   uint32 = 9  // string table: image sources
	secCaptions  uint32 = 10 // string table: first caption of each image ("" when none)
)

var sectionNames = map[uint32]string{
	secVectors: "vectors", secVecCRC: "vector checksums", secCentroids: "centroids", secCodebooks: "codebooks",
	secListStart: "list starts", secListIDs: "list ids", secListCodes: "list codes",
	secKeys: "keys", secSources: "sources", secCaptions: "captions",
}

// castagnoli is the CRC-32C table used for every checksum of the format.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Meta identifies the embeddings an index holds: the model that made them
// and their shape.
type Meta struct {
	Model       string // model name or path, as the tables record it
	Fingerprint string // the checkpoint's content fingerprint (the tables' model revision)
	Kind        string // embedding kind, e.g. itc_image
	Vectors     int    // vectors per image (V)
	Dim         int    // floats per vector (D)
	Normalized  bool   // whether every vector has unit L2 norm
}

// section is one entry of the section table.
type section struct {
	id     uint32
	offset uint64
	length uint64
	crc    uint32
}

// Header is the parsed fixed part of an index file.
type Header struct {
	Meta
	Images     int // N
	Lists      int // L, coarse centroids (0 for an empty index)
	SubVectors int // M, product quantiser sub-vectors (0 for an empty index)
	sections   []section
}

// marshal encodes the header into its headerSize page.
func (h *Header) marshal() ([]byte, error) {
	var body []byte
	putStr := func(s string) error {
		if len(s) > maxString {
			return fmt.Errorf("index header: string of %d bytes (%.40q…) over the %d-byte limit", len(s), s, maxString)
		}
		body = binary.LittleEndian.AppendUint32(body, uint32(len(s)))
		body = append(body, s...)
		return nil
	}
	for _, s := range []string{h.Model, h.Fingerprint, h.Kind} {
		if err := putStr(s); err != nil {
			return nil, err
		}
	}
	norm := uint32(0)
	if h.Normalized {
		norm = 1
	}
	for _, v := range []uint64{uint64(h.Vectors), uint64(h.Dim), uint64(norm), uint64(h.Images), uint64(h.Lists), uint64(h.SubVectors), uint64(len(h.sections))} {
		body = binary.LittleEndian.AppendUint64(body, v)
	}
	for _, s := range h.sections {
		body = binary.LittleEndian.AppendUint32(body, s.id)
		body = binary.LittleEndian.AppendUint64(body, s.offset)
		body = binary.LittleEndian.AppendUint64(body, s.length)
		body = binary.LittleEndian.AppendUint32(body, s.crc)
	}
	page := make([]byte, 0, headerSize)
	page = append(page, magic...)
	page = binary.LittleEndian.AppendUint32(page, FormatVersion)
	page = binary.LittleEndian.AppendUint32(page, uint32(len(body)))
	page = append(page, body...)
	page = binary.LittleEndian.AppendUint32(page, crc32.Checksum(page, castagnoli))
	if len(page) > headerSize {
		return nil, fmt.Errorf("index header: %d bytes, over the %d-byte header page", len(page), headerSize)
	}
	return page[:headerSize], nil
}

// ErrNotIndex is returned (wrapped) for data that does not start with the
// index magic.
var ErrNotIndex = errors.New("not a blipflow index file")

// ParseHeader decodes and validates the header page at the start of an
// index file of fileSize bytes: magic, version, checksum, field ranges and
// the section table (every section inside the file, aligned, not
// overlapping). It never panics on any input.
func ParseHeader(b []byte, fileSize int64) (*Header, error) {
	if len(b) < len(magic)+12 {
		return nil, fmt.Errorf("index header: %d bytes, too short (truncated file?)", len(b))
	}
	if string(b[:len(magic)]) != magic {
		return nil, fmt.Errorf("index header: %w (magic %q)", ErrNotIndex, b[:len(magic)])
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != FormatVersion {
		return nil, fmt.Errorf("index header: format version %d, this build reads version %d", v, FormatVersion)
	}
	bodyLen := uint64(binary.LittleEndian.Uint32(b[12:]))
	end := 16 + bodyLen
	if end+4 > uint64(len(b)) || end+4 > headerSize {
		return nil, fmt.Errorf("index header: body of %d bytes does not fit the header (truncated file?)", bodyLen)
	}
	if got, want := crc32.Checksum(b[:end], castagnoli), binary.LittleEndian.Uint32(b[end:]); got != want {
		return nil, fmt.Errorf("index header: checksum %08x, stored %08x: the file is corrupt", got, want)
	}
	d := decoder{b: b[16:end]}
	h := &Header{}
	h.Model, h.Fingerprint, h.Kind = d.str(), d.str(), d.str()
	var nums [7]uint64
	for i := range nums {
		nums[i] = d.u64()
	}
	nsec := nums[6]
	if d.err == nil && nsec > maxSections {
		d.err = fmt.Errorf("%d sections, at most %d", nsec, maxSections)
	}
	for i := uint64(0); d.err == nil && i < nsec; i++ {
		h.sections = append(h.sections, section{id: d.u32(), offset: d.u64(), length: d.u64(), crc: d.u32()})
	}
	if d.err != nil {
		return nil, fmt.Errorf("index header: %w", d.err)
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("index header: %d unexpected bytes after the section table", len(d.b))
	}
	const maxCount = 1 << 40
	for i, n := range nums[:6] {
		if n > maxCount {
			return nil, fmt.Errorf("index header: field %d is %d, out of range", i, n)
		}
	}
	if nums[2] > 1 {
		return nil, fmt.Errorf("index header: normalized flag %d, want 0 or 1", nums[2])
	}
	h.Vectors, h.Dim, h.Normalized = int(nums[0]), int(nums[1]), nums[2] == 1
	h.Images, h.Lists, h.SubVectors = int(nums[3]), int(nums[4]), int(nums[5])
	if h.Vectors < 1 || h.Dim < 1 || h.Vectors > 1<<16 || h.Dim > 1<<16 {
		return nil, fmt.Errorf("index header: embedding shape %d×%d out of range", h.Vectors, h.Dim)
	}
	if h.Images > 0 {
		if h.Lists < 1 || h.SubVectors < 1 || h.Dim%h.SubVectors != 0 || h.Lists > 1<<24 {
			return nil, fmt.Errorf("index header: %d lists and %d sub-vectors do not fit dimension %d", h.Lists, h.SubVectors, h.Dim)
		}
	}
	seen := map[uint32]bool{}
	prevEnd := uint64(headerSize)
	for _, s := range h.sections {
		name, ok := sectionNames[s.id]
		if !ok {
			return nil, fmt.Errorf("index header: unknown section id %d", s.id)
		}
		if seen[s.id] {
			return nil, fmt.Errorf("index header: section %s listed twice", name)
		}
		seen[s.id] = true
		if s.offset%sectionAlign != 0 || s.offset < prevEnd || s.length > math.MaxInt64-s.offset {
			return nil, fmt.Errorf("index header: section %s at %d+%d is misplaced", name, s.offset, s.length)
		}
		if s.offset+s.length > uint64(fileSize) {
			return nil, fmt.Errorf("index: section %s ends at byte %d but the file has %d bytes (truncated file?)", name, s.offset+s.length, fileSize)
		}
		prevEnd = s.offset + s.length
	}
	for id, name := range sectionNames {
		if !seen[id] {
			return nil, fmt.Errorf("index header: section %s missing", name)
		}
	}
	return h, nil
}

// section returns the section with the given id (ParseHeader guarantees
// every known one is present).
func (h *Header) section(id uint32) section {
	for _, s := range h.sections {
		if s.id == id {
			return s
		}
	}
	return section{}
}

// decoder reads little-endian fields, remembering the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if uint64(len(d.b)) < n {
		d.err = errors.New("truncated header body")
		return nil
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) u32() uint32 {
	if b := d.take(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if b := d.take(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (d *decoder) str() string {
	n := uint64(d.u32())
	if d.err == nil && n > maxString {
		d.err = fmt.Errorf("string of %d bytes over the %d-byte limit", n, maxString)
	}
	return string(d.take(n))
}
