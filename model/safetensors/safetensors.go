// Package safetensors reads and writes the safetensors checkpoint format used
// by Hugging Face: an 8-byte little-endian header length, a JSON header that
// maps tensor names to dtype, shape and byte offsets, then the raw data.
//
// Files are memory-mapped: float32 tensors are returned as views into the
// mapping, so loading a checkpoint does not copy its weights onto the heap.
// F16 and BF16 tensors are converted to float32 when read.
package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"unsafe"

	"golang.org/x/sys/unix"
)

// MaxHeaderSize bounds the JSON header, as the reference implementation does.
const MaxHeaderSize = 100 << 20

// DType is a tensor element type as named in the header.
type DType string

// Element types the reader knows. Only F32, F16 and BF16 can be read as float32.
const (
	F32  DType = "F32"
	F16  DType = "F16"
	BF16 DType = "BF16"
	F64  DType = "F64"
	I64  DType = "I64"
	I32  DType = "I32"
	I16  DType = "I16"
	I8   DType = "I8"
	U8   DType = "U8"
	BOOL DType = "BOOL"
)

// Size returns the bytes per element of d, or 0 for an unknown dtype.
func (d DType) Size() int {
	switch d {
	case F64, I64:
		return 8
	case F32, I32:
		return 4
	case F16, BF16, I16:
		return 2
	case I8, U8, BOOL:
		return 1
	}
	return 0
}

// Info describes one tensor in a file.
type Info struct {
	Name  string
	DType DType
	Shape []int
	// Begin and End are byte offsets into the data section.
	Begin, End int64
}

// Elements returns the number of elements of the tensor.
func (i Info) Elements() int {
	n := 1
	for _, d := range i.Shape {
		n *= d
	}
	return n
}

// File is an open, memory-mapped safetensors file.
type File struct {
	path     string
	mapping  []byte
	data     []byte
	tensors  map[string]Info
	metadata map[string]string
}

type headerEntry struct {
	DType       DType    `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// Open memory-maps the file at path and parses its header.
func Open(path string) (*File, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	defer fd.Close()
	st, err := fd.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", path, err)
	}
	size := st.Size()
	if size < 8 {
		return nil, fmt.Errorf("safetensors %s: truncated: %d bytes, need at least 8 for the header length", path, size)
	}
	var mapping []byte
	if size > 0 {
		mapping, err = unix.Mmap(int(fd.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			return nil, fmt.Errorf("safetensors %s: mmap: %w", path, err)
		}
	}
	f, err := parse(path, mapping)
	if err != nil {
		unix.Munmap(mapping)
		return nil, err
	}
	f.mapping = mapping
	return f, nil
}

// Parse reads a safetensors image held in memory. The returned File refers to
// buf; Close does nothing for it.
func Parse(name string, buf []byte) (*File, error) {
	return parse(name, buf)
}

func parse(path string, buf []byte) (*File, error) {
	if len(buf) < 8 {
		return nil, fmt.Errorf("safetensors %s: truncated: %d bytes, need at least 8 for the header length", path, len(buf))
	}
	n := binary.LittleEndian.Uint64(buf[:8])
	if n > MaxHeaderSize {
		return nil, fmt.Errorf("safetensors %s: header length %d exceeds the %d byte limit (corrupt header?)", path, n, MaxHeaderSize)
	}
	if 8+n > uint64(len(buf)) {
		return nil, fmt.Errorf("safetensors %s: truncated: header claims %d bytes but the file has %d after the length", path, n, len(buf)-8)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(buf[8:8+n], &raw); err != nil {
		return nil, fmt.Errorf("safetensors %s: corrupt header: %w", path, err)
	}
	f := &File{path: path, data: buf[8+n:], tensors: make(map[string]Info, len(raw))}
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &f.metadata); err != nil {
				return nil, fmt.Errorf("safetensors %s: corrupt __metadata__: %w", path, err)
			}
			continue
		}
		var e headerEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, fmt.Errorf("safetensors %s: tensor %q: corrupt header entry: %w", path, name, err)
		}
		info := Info{Name: name, DType: e.DType, Shape: e.Shape, Begin: e.DataOffsets[0], End: e.DataOffsets[1]}
		if err := f.check(info); err != nil {
			return nil, err
		}
		f.tensors[name] = info
	}
	return f, nil
}

func (f *File) check(i Info) error {
	es := i.DType.Size()
	if es == 0 {
		return fmt.Errorf("safetensors %s: tensor %q: unknown dtype %q", f.path, i.Name, i.DType)
	}
	n := int64(1)
	for _, d := range i.Shape {
		if d < 0 {
			return fmt.Errorf("safetensors %s: tensor %q: negative dimension in shape %v", f.path, i.Name, i.Shape)
		}
		if d > 0 && n > math.MaxInt64/int64(d)/int64(es) {
			return fmt.Errorf("safetensors %s: tensor %q: shape %v overflows", f.path, i.Name, i.Shape)
		}
		n *= int64(d)
	}
	if i.Begin < 0 || i.End < i.Begin || i.End > int64(len(f.data)) {
		return fmt.Errorf("safetensors %s: tensor %q: data offsets [%d,%d] out of range (data section is %d bytes; truncated file?)", f.path, i.Name, i.Begin, i.End, len(f.data))
	}
	if got, want := i.End-i.Begin, n*int64(es); got != want {
		return fmt.Errorf("safetensors %s: tensor %q: %d bytes for shape %v of %s, want %d", f.path, i.Name, got, i.Shape, i.DType, want)
	}
	return nil
}

// Path returns the file's path.
func (f *File) Path() string { return f.path }

// Close unmaps the file. Slices returned by Float32 for F32 tensors must not
// be used afterwards.
func (f *File) Close() error {
	if f.mapping == nil {
		return nil
	}
	err := unix.Munmap(f.mapping)
	f.mapping, f.data = nil, nil
	return err
}

// Metadata returns the header's __metadata__ map (may be nil).
func (f *File) Metadata() map[string]string { return f.metadata }

// Names returns the tensor names, sorted.
func (f *File) Names() []string {
	names := make([]string, 0, len(f.tensors))
	for n := range f.tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Info returns the description of the named tensor.
func (f *File) Info(name string) (Info, bool) {
	i, ok := f.tensors[name]
	return i, ok
}

// ErrNotFound is returned (wrapped) when a tensor is not in the checkpoint.
var ErrNotFound = errors.New("tensor not found")

// Float32 returns the named tensor as float32 with its shape. F32 data is a
// read-only view into the memory mapping when it is aligned; F16 and BF16 are
// converted into a new slice.
func (f *File) Float32(name string) ([]float32, []int, error) {
	i, ok := f.tensors[name]
	if !ok {
		return nil, nil, fmt.Errorf("safetensors %s: %q: %w", f.path, name, ErrNotFound)
	}
	raw := f.data[i.Begin:i.End]
	n := i.Elements()
	shape := append([]int(nil), i.Shape...)
	switch i.DType {
	case F32:
		if n == 0 {
			return []float32{}, shape, nil
		}
		if uintptr(unsafe.Pointer(&raw[0]))%4 == 0 {
			return unsafe.Slice((*float32)(unsafe.Pointer(&raw[0])), n), shape, nil
		}
		out := make([]float32, n)
		for k := range out {
			out[k] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*k:]))
		}
		return out, shape, nil
	case BF16:
		out := make([]float32, n)
		for k := range out {
			out[k] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(raw[2*k:])) << 16)
		}
		return out, shape, nil
	case F16:
		out := make([]float32, n)
		for k := range out {
			out[k] = HalfToFloat32(binary.LittleEndian.Uint16(raw[2*k:]))
		}
		return out, shape, nil
	}
	return nil, nil, fmt.Errorf("safetensors %s: tensor %q: dtype %s cannot be read as float32", f.path, name, i.DType)
}

// HalfToFloat32 converts an IEEE 754 half-precision value to float32.
func HalfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: normalise
		e := uint32(127 - 15 + 1)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		mant &= 0x3ff
		return math.Float32frombits(sign | e<<23 | mant<<13)
	case exp == 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// BF16 returns the named tensor's raw bfloat16 values (each the upper half of
// a float32) with its shape, without conversion: a read-only view into the
// memory mapping when it is aligned. Only BF16 tensors can be read this way.
func (f *File) BF16(name string) ([]uint16, []int, error) {
	return f.raw16(name, BF16)
}

// F16 returns the named F16 tensor's raw IEEE half values (see BF16), for
// a conversion that needs no float32 copy of the whole tensor.
func (f *File) F16(name string) ([]uint16, []int, error) {
	return f.raw16(name, F16)
}

func (f *File) raw16(name string, want DType) ([]uint16, []int, error) {
	i, ok := f.tensors[name]
	if !ok {
		return nil, nil, fmt.Errorf("safetensors %s: %q: %w", f.path, name, ErrNotFound)
	}
	if i.DType != want {
		return nil, nil, fmt.Errorf("safetensors %s: tensor %q is %s, not %s", f.path, name, i.DType, want)
	}
	raw := f.data[i.Begin:i.End]
	n := i.Elements()
	shape := append([]int(nil), i.Shape...)
	if n == 0 {
		return []uint16{}, shape, nil
	}
	if uintptr(unsafe.Pointer(&raw[0]))%2 == 0 {
		return unsafe.Slice((*uint16)(unsafe.Pointer(&raw[0])), n), shape, nil
	}
	out := make([]uint16, n)
	for k := range out {
		out[k] = binary.LittleEndian.Uint16(raw[2*k:])
	}
	return out, shape, nil
}

// Release tells the kernel the named tensor's pages of the mapping are not
// needed now (madvise MADV_DONTNEED), so a tensor converted into another
// dtype stops counting in the process's resident memory. The mapping stays
// valid: a later read faults the pages in again from the file. It does
// nothing for a File made by Parse.
func (f *File) Release(name string) error {
	i, ok := f.tensors[name]
	if !ok || f.mapping == nil || i.End == i.Begin {
		return nil
	}
	page := int64(os.Getpagesize())
	off := int64(len(f.mapping)-len(f.data)) + i.Begin
	lo := off / page * page
	hi := min((off+i.End-i.Begin+page-1)/page*page, int64(len(f.mapping)))
	if err := unix.Madvise(f.mapping[lo:hi], unix.MADV_DONTNEED); err != nil {
		return fmt.Errorf("safetensors %s: tensor %q: madvise: %w", f.path, name, err)
	}
	return nil
}
