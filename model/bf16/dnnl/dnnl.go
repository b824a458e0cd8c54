// Package dnnl binds the part of oneDNN's C API (version 2.x, libdnnl.so.2)
// that matrix products need: engines, streams, memory descriptors, matmul
// and reorder primitives. The library is loaded at run time with purego (no
// cgo). oneDNN 3.x changed memory descriptors into opaque handles and is not
// supported by this binding.
//
// Everything here is a thin wrapper: callers own the objects they create and
// destroy them. Debian's build runs oneDNN's threads with OpenMP (libgomp),
// whose thread team belongs to the OS thread that calls in; see SetThreads.
package dnnl

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"github.com/ebitengine/purego"

	"blipflow/internal/dynlib"
)

// Status is a dnnl_status_t.
type Status int32

var statusNames = map[Status]string{
	0: "success", 1: "out_of_memory", 2: "invalid_arguments", 3: "unimplemented",
	4: "iterator_ends", 5: "runtime_error", 6: "not_required",
}

func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("status %d", int32(s))
}

// Error is a failed oneDNN call.
type Error struct {
	Call   string
	Status Status
}

func (e *Error) Error() string { return fmt.Sprintf("onednn: %s: %s", e.Call, e.Status) }

func check(call string, s Status) error {
	if s != 0 {
		return &Error{Call: call, Status: s}
	}
	return nil
}

// Data types (dnnl_data_type_t).
const (
	BF16 int32 = 2
	F32  int32 = 3
)

// Format tags (dnnl_format_tag_t) of 2-D matrices: AB is row-major, BA
// column-major (the k×n weights of a matmul stored as W[n][k]), BA16a64b2a
// the blocked layout of brgemm bf16 matmul weights, Any lets a primitive
// choose.
const (
	Any        int32 = 1
	AB         int32 = 3
	BA         int32 = 22
	BA16a64b2a int32 = 380
)

// Execution argument kinds (DNNL_ARG_*).
const (
	ArgSrc        int32 = 1
	ArgFrom       int32 = 1
	ArgDst        int32 = 17
	ArgTo         int32 = 17
	ArgWeights    int32 = 33
	ArgBias       int32 = 41
	ArgScratchpad int32 = 80
)

// Queries (dnnl_query_t).
const (
	queryImplInfoStr int32 = 8
	queryWeightsMD   int32 = 131
	queryScratchMD   int32 = 136
)

// ISA is a dnnl_cpu_isa_t.
type ISA int32

var isaNames = map[ISA]string{
	0x0: "all", 0x1: "sse41", 0x3: "avx", 0x7: "avx2", 0xf: "avx512_mic", 0x1f: "avx512_mic_4ops",
	0x27: "avx512_core", 0x67: "avx512_core_vnni", 0xe7: "avx512_core_bf16", 0x3e7: "avx512_core_amx",
	0x407: "avx2_vnni",
}

func (i ISA) String() string {
	if n, ok := isaNames[i]; ok {
		return n
	}
	return fmt.Sprintf("isa %#x", int32(i))
}

// AVX512CoreBF16 is the ISA level with native bf16 dot products.
const AVX512CoreBF16 ISA = 0xe7

// mdSize is sizeof(dnnl_memory_desc_t) in oneDNN 2.x (696 bytes) rounded up
// with room to spare; opSize is the same for op descriptors (a
// dnnl_matmul_desc_t is 2800 bytes).
const (
	mdSize = 1024
	opSize = 4096
)

// MemoryDesc is a dnnl_memory_desc_t. Its zero value is invalid; make one
// with Library.MemoryDesc.
type MemoryDesc struct{ b [mdSize / 8]uint64 }

func (d *MemoryDesc) ptr() unsafe.Pointer { return unsafe.Pointer(&d.b[0]) }

// Key is the descriptor's bytes as a string, usable as a map key.
func (d *MemoryDesc) Key() string {
	return string(unsafe.Slice((*byte)(d.ptr()), mdBytes))
}

// Library is a loaded libdnnl.so.2.
type Library struct {
	Path string

	engineCreate      func(engine *uintptr, kind int32, index uintptr) Status
	engineDestroy     func(engine uintptr) Status
	streamCreate      func(stream *uintptr, engine uintptr, flags uint32) Status
	streamWait        func(stream uintptr) Status
	streamDestroy     func(stream uintptr) Status
	mdInitByTag       func(md unsafe.Pointer, ndims int32, dims *int64, dt int32, tag int32) Status
	mdEqual           func(a, b unsafe.Pointer) int32
	mdGetSize         func(md unsafe.Pointer) uintptr
	matmulDescInit    func(desc, src, weights, bias, dst unsafe.Pointer) Status
	attrCreate        func(attr *uintptr) Status
	attrDestroy       func(attr uintptr) Status
	attrSetScratchpad func(attr uintptr, mode int32) Status
	pdCreate          func(pd *uintptr, op unsafe.Pointer, attr uintptr, engine uintptr, hint uintptr) Status
	pdQuery           func(pd uintptr, what int32, index int32, result unsafe.Pointer) Status
	pdQueryMD         func(pd uintptr, what int32, index int32) unsafe.Pointer
	pdDestroy         func(pd uintptr) Status
	reorderPDCreate   func(pd *uintptr, src unsafe.Pointer, srcEngine uintptr, dst unsafe.Pointer, dstEngine uintptr, attr uintptr) Status
	primCreate        func(prim *uintptr, pd uintptr) Status
	primDestroy       func(prim uintptr) Status
	primExecute       func(prim uintptr, stream uintptr, nargs int32, args unsafe.Pointer) Status
	memCreate         func(mem *uintptr, md unsafe.Pointer, engine uintptr, handle unsafe.Pointer) Status
	memDestroy        func(mem uintptr) Status
	version           func() unsafe.Pointer
	effectiveISA      func() int32
	ompSetNumThreads  func(n int32)
	ompGetMaxThreads  func() int32
}

// candidates lists where libdnnl.so.2 is looked for.
func candidates() []string {
	return []string{"libdnnl.so.2", "/usr/lib/x86_64-linux-gnu/libdnnl.so.2", "/usr/local/lib/libdnnl.so.2", "/opt/intel/oneapi/dnnl/latest/lib/libdnnl.so.2"}
}

// Open loads oneDNN from path, or from the usual places when path is empty.
func Open(path string) (*Library, error) {
	const mode = purego.RTLD_NOW | purego.RTLD_LOCAL
	var handle uintptr
	if path != "" {
		h, err := purego.Dlopen(path, mode)
		if err != nil {
			return nil, fmt.Errorf("onednn: load %s: %w", path, err)
		}
		handle = h
	} else {
		var errs []string
		for _, p := range candidates() {
			if filepath.IsAbs(p) {
				if _, err := os.Stat(p); err != nil {
					continue
				}
			}
			h, err := purego.Dlopen(p, mode)
			if err == nil {
				handle, path = h, p
				break
			}
			errs = append(errs, err.Error())
		}
		if handle == 0 {
			return nil, fmt.Errorf("onednn: libdnnl.so.2 not found (%s); install Debian's libdnnl2 with .ci/install-onednn.sh or set the library path",
				strings.Join(errs, "; "))
		}
	}
	l := &Library{Path: path}
	if err := l.bind(handle); err != nil {
		_ = purego.Dlclose(handle)
		return nil, fmt.Errorf("onednn %s: %w", path, err)
	}
	if v := l.Version(); !strings.HasPrefix(v, "2.") {
		_ = purego.Dlclose(handle)
		return nil, fmt.Errorf("onednn %s: version %s, this binding needs 2.x", path, v)
	}
	return l, nil
}

func (l *Library) bind(handle uintptr) error {
	err := dynlib.Bind(handle,
		dynlib.Symbol{Name: "dnnl_engine_create", Fn: &l.engineCreate},
		dynlib.Symbol{Name: "dnnl_engine_destroy", Fn: &l.engineDestroy},
		dynlib.Symbol{Name: "dnnl_stream_create", Fn: &l.streamCreate},
		dynlib.Symbol{Name: "dnnl_stream_wait", Fn: &l.streamWait},
		dynlib.Symbol{Name: "dnnl_stream_destroy", Fn: &l.streamDestroy},
		dynlib.Symbol{Name: "dnnl_memory_desc_init_by_tag", Fn: &l.mdInitByTag},
		dynlib.Symbol{Name: "dnnl_memory_desc_equal", Fn: &l.mdEqual},
		dynlib.Symbol{Name: "dnnl_memory_desc_get_size", Fn: &l.mdGetSize},
		dynlib.Symbol{Name: "dnnl_matmul_desc_init", Fn: &l.matmulDescInit},
		dynlib.Symbol{Name: "dnnl_primitive_attr_create", Fn: &l.attrCreate},
		dynlib.Symbol{Name: "dnnl_primitive_attr_destroy", Fn: &l.attrDestroy},
		dynlib.Symbol{Name: "dnnl_primitive_attr_set_scratchpad_mode", Fn: &l.attrSetScratchpad},
		dynlib.Symbol{Name: "dnnl_primitive_desc_create", Fn: &l.pdCreate},
		dynlib.Symbol{Name: "dnnl_primitive_desc_query", Fn: &l.pdQuery},
		dynlib.Symbol{Name: "dnnl_primitive_desc_query_md", Fn: &l.pdQueryMD},
		dynlib.Symbol{Name: "dnnl_primitive_desc_destroy", Fn: &l.pdDestroy},
		dynlib.Symbol{Name: "dnnl_reorder_primitive_desc_create", Fn: &l.reorderPDCreate},
		dynlib.Symbol{Name: "dnnl_primitive_create", Fn: &l.primCreate},
		dynlib.Symbol{Name: "dnnl_primitive_destroy", Fn: &l.primDestroy},
		dynlib.Symbol{Name: "dnnl_primitive_execute", Fn: &l.primExecute},
		dynlib.Symbol{Name: "dnnl_memory_create", Fn: &l.memCreate},
		dynlib.Symbol{Name: "dnnl_memory_destroy", Fn: &l.memDestroy},
		dynlib.Symbol{Name: "dnnl_version", Fn: &l.version},
		dynlib.Symbol{Name: "dnnl_get_effective_cpu_isa", Fn: &l.effectiveISA},
	)
	// OpenMP's entry points come from libgomp, which the library depends
	// on; a build with another threading runtime has none.
	if addr, err := purego.Dlsym(handle, "omp_set_num_threads"); err == nil {
		purego.RegisterFunc(&l.ompSetNumThreads, addr)
	}
	if addr, err := purego.Dlsym(handle, "omp_get_max_threads"); err == nil {
		purego.RegisterFunc(&l.ompGetMaxThreads, addr)
	}
	return err
}

// Version is the library's version, e.g. "2.6.3".
func (l *Library) Version() string {
	v := (*struct{ Major, Minor, Patch int32 })(l.version())
	return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
}

// EffectiveISA is the instruction set oneDNN's JIT kernels target on this
// CPU.
func (l *Library) EffectiveISA() ISA { return ISA(l.effectiveISA()) }

// SetThreads sets the OpenMP thread count for parallel regions started by
// the calling OS thread (omp_set_num_threads); it reports false when the
// library does not use OpenMP.
func (l *Library) SetThreads(n int) bool {
	if l.ompSetNumThreads == nil {
		return false
	}
	l.ompSetNumThreads(int32(n))
	return true
}

// MaxThreads is omp_get_max_threads for the calling OS thread, or 0 when
// the library does not use OpenMP.
func (l *Library) MaxThreads() int {
	if l.ompGetMaxThreads == nil {
		return 0
	}
	return int(l.ompGetMaxThreads())
}

// Engine is a CPU engine with one in-order stream.
type Engine struct {
	lib            *Library
	engine, stream uintptr
}

// NewEngine creates the CPU engine and a stream on it.
func (l *Library) NewEngine() (*Engine, error) {
	e := &Engine{lib: l}
	if err := check("dnnl_engine_create", l.engineCreate(&e.engine, 1, 0)); err != nil {
		return nil, err
	}
	if err := check("dnnl_stream_create", l.streamCreate(&e.stream, e.engine, 1)); err != nil {
		l.engineDestroy(e.engine)
		return nil, err
	}
	return e, nil
}

// Close destroys the stream and the engine.
func (e *Engine) Close() {
	e.lib.streamDestroy(e.stream)
	e.lib.engineDestroy(e.engine)
}

// MemoryDesc describes a rows×cols matrix of data type dt in format tag.
func (l *Library) MemoryDesc(rows, cols int, dt, tag int32) (*MemoryDesc, error) {
	d := new(MemoryDesc)
	dims := [2]int64{int64(rows), int64(cols)}
	if err := check(fmt.Sprintf("dnnl_memory_desc_init_by_tag(%d×%d, type %d, tag %d)", rows, cols, dt, tag),
		l.mdInitByTag(d.ptr(), 2, &dims[0], dt, tag)); err != nil {
		return nil, err
	}
	return d, nil
}

// Equal reports whether two descriptors describe the same memory.
func (l *Library) Equal(a, b *MemoryDesc) bool { return l.mdEqual(a.ptr(), b.ptr()) != 0 }

// Size is the number of bytes the described memory takes, padding included.
func (l *Library) Size(d *MemoryDesc) int { return int(l.mdGetSize(d.ptr())) }

// Primitive is a created primitive with the descriptors it was built for.
type Primitive struct {
	lib  *Library
	prim uintptr
	// Impl is the implementation oneDNN chose, e.g. "brg:avx512_core_bf16".
	Impl string
	// Weights is the weights layout the primitive expects (matmul only).
	Weights *MemoryDesc
	// ScratchpadSize is the bytes of scratch memory each execution needs
	// (the primitive is created with a user-provided scratchpad).
	ScratchpadSize int
	scratchMD      *MemoryDesc
}

// Destroy releases the primitive.
func (p *Primitive) Destroy() { p.lib.primDestroy(p.prim) }

// Matmul creates a matmul primitive dst = src·weights (+ bias) for the
// given descriptors (bias may be nil). The scratchpad is user-provided, so
// that executions on different threads do not share one.
func (e *Engine) Matmul(src, weights, bias, dst *MemoryDesc) (*Primitive, error) {
	l := e.lib
	var op [opSize / 8]uint64
	var biasPtr unsafe.Pointer
	if bias != nil {
		biasPtr = bias.ptr()
	}
	if err := check("dnnl_matmul_desc_init", l.matmulDescInit(unsafe.Pointer(&op[0]), src.ptr(), weights.ptr(), biasPtr, dst.ptr())); err != nil {
		return nil, err
	}
	return e.create("matmul", func(pd *uintptr, attr uintptr) Status {
		return l.pdCreate(pd, unsafe.Pointer(&op[0]), attr, e.engine, 0)
	})
}

// MatmulChoice reports the implementation and weights layout oneDNN would
// pick for a matmul with these descriptors (weights may use format Any),
// without creating the primitive.
func (e *Engine) MatmulChoice(src, weights, bias, dst *MemoryDesc) (impl string, wei *MemoryDesc, err error) {
	l := e.lib
	var op [opSize / 8]uint64
	var biasPtr unsafe.Pointer
	if bias != nil {
		biasPtr = bias.ptr()
	}
	if err := check("dnnl_matmul_desc_init", l.matmulDescInit(unsafe.Pointer(&op[0]), src.ptr(), weights.ptr(), biasPtr, dst.ptr())); err != nil {
		return "", nil, err
	}
	var pd uintptr
	if err := check("matmul primitive descriptor", l.pdCreate(&pd, unsafe.Pointer(&op[0]), 0, e.engine, 0)); err != nil {
		return "", nil, err
	}
	defer l.pdDestroy(pd)
	var s *byte
	if l.pdQuery(pd, queryImplInfoStr, 0, unsafe.Pointer(&s)) == 0 && s != nil {
		impl = cString(s)
	}
	if w := l.pdQueryMD(pd, queryWeightsMD, 0); w != nil {
		wei = copyMD(w)
	}
	return impl, wei, nil
}

// Reorder creates a reorder primitive from src to dst layout.
func (e *Engine) Reorder(src, dst *MemoryDesc) (*Primitive, error) {
	l := e.lib
	return e.create("reorder", func(pd *uintptr, attr uintptr) Status {
		return l.reorderPDCreate(pd, src.ptr(), e.engine, dst.ptr(), e.engine, attr)
	})
}

// create makes a primitive from the descriptor makePD creates, with a
// user-provided scratchpad, and records what oneDNN chose.
func (e *Engine) create(kind string, makePD func(pd *uintptr, attr uintptr) Status) (*Primitive, error) {
	l := e.lib
	var attr uintptr
	if err := check("dnnl_primitive_attr_create", l.attrCreate(&attr)); err != nil {
		return nil, err
	}
	defer l.attrDestroy(attr)
	if err := check("dnnl_primitive_attr_set_scratchpad_mode", l.attrSetScratchpad(attr, 1)); err != nil {
		return nil, err
	}
	var pd uintptr
	if err := check(kind+" primitive descriptor", makePD(&pd, attr)); err != nil {
		return nil, err
	}
	defer l.pdDestroy(pd)
	p := &Primitive{lib: l}
	var impl *byte
	if l.pdQuery(pd, queryImplInfoStr, 0, unsafe.Pointer(&impl)) == 0 && impl != nil {
		p.Impl = cString(impl)
	}
	if w := l.pdQueryMD(pd, queryWeightsMD, 0); w != nil {
		p.Weights = copyMD(w)
	}
	if s := l.pdQueryMD(pd, queryScratchMD, 0); s != nil {
		p.scratchMD = copyMD(s)
		p.ScratchpadSize = l.Size(p.scratchMD)
	}
	if err := check(kind+" primitive", l.primCreate(&p.prim, pd)); err != nil {
		return nil, err
	}
	return p, nil
}

// mdBytes is sizeof(dnnl_memory_desc_t) in oneDNN 2.x.
const mdBytes = 696

// copyMD copies the descriptor at C address a.
func copyMD(a unsafe.Pointer) *MemoryDesc {
	d := new(MemoryDesc)
	copy(unsafe.Slice((*byte)(d.ptr()), mdBytes), unsafe.Slice((*byte)(a), mdBytes))
	return d
}

func cString(p *byte) string {
	var b []byte
	for q := unsafe.Pointer(p); *(*byte)(q) != 0; q = unsafe.Add(q, 1) {
		b = append(b, *(*byte)(q))
	}
	return string(b)
}

// Arg is one execution argument: the memory described by MD at Data.
type Arg struct {
	Kind int32
	MD   *MemoryDesc
	Data unsafe.Pointer
}

// Execute runs p on e's stream with args and waits for it. scratch must
// hold at least p.ScratchpadSize bytes. The memory the arguments point at
// must stay alive and unmoved during the call (Go heap memory does).
func (e *Engine) Execute(p *Primitive, scratch unsafe.Pointer, args ...Arg) error {
	l := e.lib
	type execArg struct {
		arg int32
		mem uintptr
	}
	all := make([]execArg, 0, len(args)+1)
	defer func() {
		for _, a := range all {
			l.memDestroy(a.mem)
		}
	}()
	add := func(kind int32, md *MemoryDesc, data unsafe.Pointer) error {
		var mem uintptr
		if err := check("dnnl_memory_create", l.memCreate(&mem, md.ptr(), e.engine, data)); err != nil {
			return err
		}
		all = append(all, execArg{kind, mem})
		return nil
	}
	for _, a := range args {
		if err := add(a.Kind, a.MD, a.Data); err != nil {
			return err
		}
	}
	if p.scratchMD != nil && p.ScratchpadSize > 0 {
		if err := add(ArgScratchpad, p.scratchMD, scratch); err != nil {
			return err
		}
	}
	if err := check("dnnl_primitive_execute", l.primExecute(p.prim, e.stream, int32(len(all)), unsafe.Pointer(&all[0]))); err != nil {
		return err
	}
	return check("dnnl_stream_wait", l.streamWait(e.stream))
}
