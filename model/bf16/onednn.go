package bf16

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"blipflow/model/bf16/dnnl"
)

// DefaultSmallRows is the largest m the oneDNN engine hands to the Go
// kernels when Options.SmallRows is 0, by CPU:
//
//   - AVX512_BF16 without AMX: all of them. Measured on AMD Zen 4 (2
//     threads, CPU time per product): the Go kernels took 25-50% less time
//     than oneDNN's brg:avx512_core_bf16 at m <= 16, where the weights'
//     memory speed decides, and 1-15% less from 32 to 257 rows, where both
//     run VDPBF16PS close to its peak; in the whole ViT-g encoder (257
//     rows per image) they took 1.76-1.77 s per image against oneDNN's
//     1.83-2.02 s (no hand-off to oneDNN's thread and OpenMP team).
//   - AMX: 16 (not measured here: AMX tiles multiply several times faster
//     than VDPBF16PS, so oneDNN should win once a product is not bound by
//     memory).
//   - otherwise: 16.
func DefaultSmallRows() int {
	f := hostFeatures()
	switch {
	case f.AMXTile && f.AMXBF16:
		return 16
	case f.AVX512BF16:
		return math.MaxInt
	}
	return 16
}

// errNoNativeISA marks a oneDNN that loads but has no native bf16 kernels
// on this CPU.
var errNoNativeISA = errors.New("no native bf16 matmul")

// EnvOMPWaitPolicy is OpenMP's variable for what idle threads do. Unless it
// is set, Load sets it to PASSIVE before loading oneDNN, so that OpenMP
// threads sleep between products instead of spinning on the cores the Go
// kernels and the rest of the model need.
const EnvOMPWaitPolicy = "OMP_WAIT_POLICY"

// OneDNNEngine multiplies with oneDNN's matmul primitive (bf16 source and
// weights, fp32 bias and destination) for more than SmallRows rows, and
// with the Go kernels below that. oneDNN reads the weights from the packed
// copy the Go kernels use (oneDNN's own BA16a64b2a layout), so the weights
// are in memory once. All oneDNN calls run on one OS thread owned by the
// engine, so that OpenMP keeps one thread team of Threads threads; products
// that reach oneDNN from several goroutines take turns.
type OneDNNEngine struct {
	lib       *dnnl.Library
	small     *GoEngine
	smallRows int
	threads   int
	impl      string
	calls     chan func()

	fallbacks atomic.Int64
	lastErr   atomic.Pointer[error]
	copies    atomic.Int64

	// forceReorder makes every primitive take weights in oneDNN's chosen
	// layout through a reordered copy (tests the path other CPUs take).
	forceReorder bool

	// Owned by the engine's OS thread.
	eng     *dnnl.Engine
	prims   map[matmulKey]*matmulPrim
	scratch []byte
}

type matmulKey struct {
	m, k, n int
	bias    bool
}

type matmulPrim struct {
	prim               *dnnl.Primitive
	src, wei, bia, dst *dnnl.MemoryDesc
	// reorder, when set, converts the packed weights into the layout wei
	// that oneDNN chose itself, because the packed layout would have made
	// it pick a different implementation (a CPU whose fast kernels want
	// other blocking, as AMX might). The copy is cached in the Matrix.
	reorder *dnnl.Primitive
	packed  *dnnl.MemoryDesc
}

// reorderKey keys a Matrix's copy of its weights in a oneDNN layout.
type reorderKey struct {
	e      *OneDNNEngine
	layout string
}

// maxPrimitives bounds the primitive cache; past it the cache is emptied
// (shapes are few in practice: one per layer kind and row count).
const maxPrimitives = 512

var oneDNNEngines struct {
	sync.Mutex
	byOptions map[Options]*OneDNNEngine
}

// loadOneDNN returns the oneDNN engine for o, made once per process and
// distinct Options.
func loadOneDNN(o Options) (Engine, error) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		return nil, errNoOneDNN
	}
	o.Kind = KindOneDNN
	if o.Threads == 0 {
		o.Threads = runtime.GOMAXPROCS(0)
	}
	if o.SmallRows == 0 {
		o.SmallRows = DefaultSmallRows()
	}
	oneDNNEngines.Lock()
	defer oneDNNEngines.Unlock()
	if e, ok := oneDNNEngines.byOptions[o]; ok {
		return e, nil
	}
	e, err := newOneDNNEngine(o, false)
	if err != nil {
		return nil, err
	}
	if oneDNNEngines.byOptions == nil {
		oneDNNEngines.byOptions = map[Options]*OneDNNEngine{}
	}
	oneDNNEngines.byOptions[o] = e
	return e, nil
}

func newOneDNNEngine(o Options, forceReorder bool) (*OneDNNEngine, error) {
	if _, set := os.LookupEnv(EnvOMPWaitPolicy); !set {
		if err := os.Setenv(EnvOMPWaitPolicy, "PASSIVE"); err != nil {
			return nil, fmt.Errorf("bf16: set %s: %w", EnvOMPWaitPolicy, err)
		}
	}
	lib, err := dnnl.Open(o.LibraryPath)
	if err != nil {
		return nil, err
	}
	e := &OneDNNEngine{
		lib:       lib,
		small:     NewGoEngine(o.Threads),
		smallRows: o.SmallRows,
		threads:   o.Threads,
		calls:     make(chan func()),
		prims:     map[matmulKey]*matmulPrim{},

		forceReorder: forceReorder,
	}
	go e.serve()
	var initErr error
	e.do(func() { initErr = e.init() })
	if initErr != nil {
		close(e.calls)
		return nil, fmt.Errorf("onednn %s: %w", lib.Path, initErr)
	}
	return e, nil
}

// serve runs the engine's oneDNN calls on one locked OS thread.
func (e *OneDNNEngine) serve() {
	runtime.LockOSThread()
	for f := range e.calls {
		f()
	}
}

// do runs f on the engine's thread and waits for it.
func (e *OneDNNEngine) do(f func()) {
	done := make(chan struct{})
	e.calls <- func() {
		defer close(done)
		f()
	}
	<-done
}

// init sets the thread count, creates the engine and checks that a bf16
// matmul with the packed weight layout can be created on this CPU.
func (e *OneDNNEngine) init() error {
	if isa := e.lib.EffectiveISA(); isa&dnnl.AVX512CoreBF16 != dnnl.AVX512CoreBF16 {
		// Below avx512_core_bf16 oneDNN 2.x converts bf16 in its gemm or
		// has no bf16 matmul at all; the Go kernels are the better path.
		return fmt.Errorf("%w: oneDNN's isa on %s is %s (needs avx512_core_bf16 or amx)", errNoNativeISA, cpuDescription(), isa)
	}
	e.lib.SetThreads(e.threads)
	eng, err := e.lib.NewEngine()
	if err != nil {
		return err
	}
	e.eng = eng
	p, err := e.primitive(matmulKey{m: 32, k: 64, n: 64})
	if err != nil {
		return fmt.Errorf("bf16 matmul on %s (isa %s): %w", cpuDescription(), e.lib.EffectiveISA(), err)
	}
	e.impl = p.prim.Impl
	if strings.HasPrefix(e.impl, "ref") {
		// oneDNN's reference loops are far slower than the Go kernels.
		return fmt.Errorf("bf16 matmul on %s (isa %s) has only oneDNN's reference implementation %q", cpuDescription(), e.lib.EffectiveISA(), e.impl)
	}
	return nil
}

func cpuDescription() string {
	_, f := Supported()
	return f
}

// Name implements Engine.
func (e *OneDNNEngine) Name() string {
	threads := fmt.Sprintf("%d threads", e.threads)
	if e.lib.MaxThreads() > 0 {
		threads = fmt.Sprintf("%d OpenMP threads", e.threads)
	}
	s := fmt.Sprintf("onednn %s %s (isa %s, %s)", e.lib.Version(), e.impl, e.lib.EffectiveISA(), threads)
	if c := e.copies.Load(); c > 0 {
		s += fmt.Sprintf(", %d weight matrices copied into its own layout", c)
	}
	switch {
	case e.smallRows == math.MaxInt:
		s += "; every m: " + e.small.Name()
	case e.smallRows > 0:
		s += fmt.Sprintf("; m <= %d: %s", e.smallRows, e.small.Name())
	}
	return s
}

// ISA is the instruction set oneDNN dispatches to on this CPU, e.g.
// "avx512_core_bf16" or "avx512_core_amx".
func (e *OneDNNEngine) ISA() string { return e.lib.EffectiveISA().String() }

// Impl is the matmul implementation oneDNN chose, e.g.
// "brg:avx512_core_bf16".
func (e *OneDNNEngine) Impl() string { return e.impl }

// primitive returns the cached matmul for key, creating it. It runs on
// the engine's thread.
func (e *OneDNNEngine) primitive(key matmulKey) (*matmulPrim, error) {
	if p, ok := e.prims[key]; ok {
		return p, nil
	}
	if len(e.prims) >= maxPrimitives {
		for k, p := range e.prims {
			p.prim.Destroy()
			delete(e.prims, k)
		}
	}
	l := e.lib
	var p matmulPrim
	var err error
	if p.src, err = l.MemoryDesc(key.m, key.k, dnnl.BF16, dnnl.AB); err != nil {
		return nil, err
	}
	if p.wei, err = l.MemoryDesc(key.k, key.n, dnnl.BF16, dnnl.BA16a64b2a); err != nil {
		return nil, err
	}
	if want := roundUp(key.k, blockK) * roundUp(key.n, blockN) * 2; l.Size(p.wei) != want {
		return nil, fmt.Errorf("weights layout BA16a64b2a of %d×%d takes %d bytes, the packed copy %d", key.k, key.n, l.Size(p.wei), want)
	}
	if key.bias {
		if p.bia, err = l.MemoryDesc(1, key.n, dnnl.F32, dnnl.AB); err != nil {
			return nil, err
		}
	}
	if p.dst, err = l.MemoryDesc(key.m, key.n, dnnl.F32, dnnl.AB); err != nil {
		return nil, err
	}
	// What would oneDNN pick with the weights layout left to it?
	anyWei, err := l.MemoryDesc(key.k, key.n, dnnl.BF16, dnnl.Any)
	if err != nil {
		return nil, err
	}
	anyImpl, prefWei, choiceErr := e.eng.MatmulChoice(p.src, anyWei, p.bia, p.dst)
	if p.prim, err = e.eng.Matmul(p.src, p.wei, p.bia, p.dst); err != nil && choiceErr != nil {
		return nil, fmt.Errorf("matmul %d×%d×%d: %w", key.m, key.k, key.n, err)
	}
	if choiceErr == nil && prefWei != nil && (err != nil || e.forceReorder || p.prim.Impl != anyImpl) {
		// The packed layout is not what oneDNN's best implementation
		// here takes: use its own layout, through a reordered copy.
		if p.prim != nil {
			p.prim.Destroy()
		}
		p.packed = p.wei
		p.wei = prefWei
		if p.prim, err = e.eng.Matmul(p.src, p.wei, p.bia, p.dst); err != nil {
			return nil, fmt.Errorf("matmul %d×%d×%d (weights in oneDNN's layout): %w", key.m, key.k, key.n, err)
		}
		if p.reorder, err = e.eng.Reorder(p.packed, p.wei); err != nil {
			p.prim.Destroy()
			return nil, fmt.Errorf("reorder of %d×%d weights into oneDNN's layout: %w", key.k, key.n, err)
		}
		e.scratch = growBytes(e.scratch, p.reorder.ScratchpadSize)
	}
	e.scratch = growBytes(e.scratch, p.prim.ScratchpadSize)
	e.prims[key] = &p
	return &p, nil
}

func growBytes(b []byte, n int) []byte {
	if n > len(b) {
		return make([]byte, n)
	}
	return b
}

// weightsFor returns the weights p multiplies: the packed copy, or the
// Matrix's cached copy in oneDNN's layout, made on first use. It runs on
// the engine's thread.
func (e *OneDNNEngine) weightsFor(p *matmulPrim, w *Matrix, pk *packedWeights) (unsafe.Pointer, error) {
	if p.reorder == nil {
		return unsafe.Pointer(&pk.data[0]), nil
	}
	key := reorderKey{e: e, layout: p.wei.Key()}
	v, err := w.extra(key, func() (any, error) {
		buf := make([]uint64, (e.lib.Size(p.wei)+7)/8)
		err := e.eng.Execute(p.reorder, e.scratchPtr(),
			dnnl.Arg{Kind: dnnl.ArgFrom, MD: p.packed, Data: unsafe.Pointer(&pk.data[0])},
			dnnl.Arg{Kind: dnnl.ArgTo, MD: p.wei, Data: unsafe.Pointer(&buf[0])})
		if err != nil {
			return nil, err
		}
		e.copies.Add(1)
		return buf, nil
	})
	if err != nil {
		return nil, err
	}
	return unsafe.Pointer(&v.([]uint64)[0]), nil
}

func (e *OneDNNEngine) scratchPtr() unsafe.Pointer {
	if len(e.scratch) == 0 {
		return nil
	}
	return unsafe.Pointer(&e.scratch[0])
}

// ReorderedCopies is the number of weight matrices this engine keeps a
// second copy of, in a layout oneDNN preferred over the packed one (zero
// where oneDNN's kernels take the packed layout, as on AVX512-BF16 CPUs).
func (e *OneDNNEngine) ReorderedCopies() int64 { return e.copies.Load() }

// MulT implements Engine.
func (e *OneDNNEngine) MulT(x []float32, m int, w *Matrix, bias []float32, out []float32) {
	checkMulT(x, m, w, bias, out)
	if m == 0 {
		return
	}
	if m <= e.smallRows {
		e.small.MulT(x, m, w, bias, out)
		return
	}
	pk := w.packed()
	n, k := w.Rows, w.Cols
	xp := xPool.Get().(*[]uint16)
	defer xPool.Put(xp)
	if cap(*xp) < m*k {
		*xp = make([]uint16, m*k)
	}
	xb := (*xp)[:m*k]
	FromFloat32(xb, x[:m*k])
	var err error
	e.do(func() {
		var p *matmulPrim
		if p, err = e.primitive(matmulKey{m: m, k: k, n: n, bias: bias != nil}); err != nil {
			return
		}
		var wd unsafe.Pointer
		if wd, err = e.weightsFor(p, w, pk); err != nil {
			return
		}
		args := []dnnl.Arg{
			{Kind: dnnl.ArgSrc, MD: p.src, Data: unsafe.Pointer(&xb[0])},
			{Kind: dnnl.ArgWeights, MD: p.wei, Data: wd},
			{Kind: dnnl.ArgDst, MD: p.dst, Data: unsafe.Pointer(&out[0])},
		}
		if bias != nil {
			args = append(args, dnnl.Arg{Kind: dnnl.ArgBias, MD: p.bia, Data: unsafe.Pointer(&bias[0])})
		}
		err = e.eng.Execute(p.prim, e.scratchPtr(), args...)
	})
	runtime.KeepAlive(xb)
	runtime.KeepAlive(pk)
	runtime.KeepAlive(out)
	runtime.KeepAlive(bias)
	if err != nil {
		// Creating or running a primitive for a shape the init check
		// passed should not fail; when it does, the Go kernels still give
		// the right answer, and Fallbacks tells.
		err = fmt.Errorf("onednn matmul %d×%d×%d: %w", m, k, n, err)
		e.lastErr.Store(&err)
		e.fallbacks.Add(1)
		e.small.MulT(x, m, w, bias, out)
	}
}

// Fallbacks reports how many products oneDNN failed to run (the Go kernels
// computed them instead) and the last error.
func (e *OneDNNEngine) Fallbacks() (int64, error) {
	if p := e.lastErr.Load(); p != nil {
		return e.fallbacks.Load(), *p
	}
	return e.fallbacks.Load(), nil
}
