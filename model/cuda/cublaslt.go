package cuda

import (
	"fmt"
	"sync"
	"unsafe"
)

// CublasLtSonames are the cuBLASLt libraries tried, newest first.
var CublasLtSonames = []string{"libcublasLt.so.13", "libcublasLt.so.12"}

// Data and compute types of cuBLASLt (cudaDataType, cublasComputeType_t).
const (
	DataF32  = 0  // CUDA_R_32F
	DataF16  = 2  // CUDA_R_16F
	DataBF16 = 14 // CUDA_R_16BF

	Compute32F         = 68 // CUBLAS_COMPUTE_32F: fp32 accumulation, no TF32
	Compute32FFastTF32 = 77 // CUBLAS_COMPUTE_32F_FAST_TF32
)

const (
	lastStatusSuccess      = 0
	lastStatusAllocFailed  = 3
	descAttrTransA         = 3 // CUBLASLT_MATMUL_DESC_TRANSA
	descAttrTransB         = 4 // CUBLASLT_MATMUL_DESC_TRANSB
	prefAttrMaxWorkspace   = 1 // CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES
	opN, opT               = 0, 1
	heuristicResultBytes   = 96 // sizeof(cublasLtMatmulHeuristicResult_t)
	heuristicWorkspaceOff  = 64
	heuristicStateOff      = 72
	defaultMatmulWorkspace = 32 << 20
)

// BlasError is a failed cuBLASLt call.
type BlasError struct {
	Call   string
	Status int
	Name   string
}

func (e *BlasError) Error() string {
	return fmt.Sprintf("cublasLt: %s: %s (%d)", e.Call, e.Name, e.Status)
}

// Is makes an allocation failure match ErrOutOfMemory.
func (e *BlasError) Is(target error) bool {
	return target == ErrOutOfMemory && e.Status == lastStatusAllocFailed
}

type cublasLt struct {
	lib *library

	create           func(h *uintptr) int32
	destroy          func(h uintptr) int32
	getVersion       func() uint64
	statusName       func(status int32) string
	descCreate       func(d *uintptr, compute int32, scale int32) int32
	descDestroy      func(d uintptr) int32
	descSetAttribute func(d uintptr, attr int32, buf unsafe.Pointer, size uint64) int32
	layoutCreate     func(l *uintptr, typ int32, rows, cols uint64, ld int64) int32
	layoutDestroy    func(l uintptr) int32
	prefCreate       func(p *uintptr) int32
	prefDestroy      func(p uintptr) int32
	prefSetAttribute func(p uintptr, attr int32, buf unsafe.Pointer, size uint64) int32
	algoGetHeuristic func(h, desc, a, b, c, d, pref uintptr, requested int32, results unsafe.Pointer, count *int32) int32
	matmul           func(h, desc uintptr, alpha unsafe.Pointer, a, adesc, b, bdesc uintptr, beta unsafe.Pointer, c, cdesc, d, ddesc uintptr, algo unsafe.Pointer, ws uintptr, wsSize uint64, s uintptr) int32
}

var (
	ltOnce sync.Once
	theLt  *cublasLt
	ltErr  error
)

func loadCublasLt() (*cublasLt, error) {
	ltOnce.Do(func() {
		lib, err := openLibrary("cuBLASLt", CublasLtSonames...)
		if err != nil {
			ltErr = err
			return
		}
		l := &cublasLt{lib: lib}
		b := &binder{lib: lib}
		b.bind(&l.create, "cublasLtCreate")
		b.bind(&l.destroy, "cublasLtDestroy")
		b.bind(&l.getVersion, "cublasLtGetVersion")
		b.bind(&l.statusName, "cublasLtGetStatusName")
		b.bind(&l.descCreate, "cublasLtMatmulDescCreate")
		b.bind(&l.descDestroy, "cublasLtMatmulDescDestroy")
		b.bind(&l.descSetAttribute, "cublasLtMatmulDescSetAttribute")
		b.bind(&l.layoutCreate, "cublasLtMatrixLayoutCreate")
		b.bind(&l.layoutDestroy, "cublasLtMatrixLayoutDestroy")
		b.bind(&l.prefCreate, "cublasLtMatmulPreferenceCreate")
		b.bind(&l.prefDestroy, "cublasLtMatmulPreferenceDestroy")
		b.bind(&l.prefSetAttribute, "cublasLtMatmulPreferenceSetAttribute")
		b.bind(&l.algoGetHeuristic, "cublasLtMatmulAlgoGetHeuristic")
		b.bind(&l.matmul, "cublasLtMatmul")
		if b.err != nil {
			ltErr = fmt.Errorf("cuBLASLt unusable: %w", b.err)
			return
		}
		theLt = l
	})
	return theLt, ltErr
}

func (l *cublasLt) check(call string, status int32) error {
	if status == lastStatusSuccess {
		return nil
	}
	return &BlasError{Call: call, Status: int(status), Name: l.statusName(status)}
}

// Blas is a cuBLASLt handle with a workspace and cached matmul plans, used
// from one Context's thread.
type Blas struct {
	c         *Context
	l         *cublasLt
	h         uintptr
	workspace Buffer
	plans     map[GemmShape]*gemmPlan
	// Version is cublasLtGetVersion (e.g. 120805).
	Version int
}

// GemmShape is one matrix product D[M,N] = op(A)·op(B) in cuBLASLt's
// column-major terms, with the element types and compute type.
type GemmShape struct {
	M, N, K        int
	TransA, TransB bool
	AType, BType   int
	CType, Compute int
}

type gemmPlan struct {
	desc, a, b, c uintptr
	algo          [heuristicResultBytes]byte
	workspace     uint64
}

// NewBlas creates a cuBLASLt handle and workspace. Call inside c.Do.
func (c *Context) NewBlas() (*Blas, error) {
	l, err := loadCublasLt()
	if err != nil {
		return nil, err
	}
	b := &Blas{c: c, l: l, plans: map[GemmShape]*gemmPlan{}, Version: int(l.getVersion())}
	if err := l.check("cublasLtCreate", l.create(&b.h)); err != nil {
		return nil, err
	}
	if b.workspace, err = c.Alloc(defaultMatmulWorkspace); err != nil {
		l.destroy(b.h)
		return nil, fmt.Errorf("cuBLASLt workspace: %w", err)
	}
	return b, nil
}

// plan finds (once per shape) cuBLASLt's preferred algorithm.
func (b *Blas) plan(s GemmShape) (*gemmPlan, error) {
	if p, ok := b.plans[s]; ok {
		return p, nil
	}
	l := b.l
	p := &gemmPlan{}
	fail := func(err error) (*gemmPlan, error) {
		b.destroyPlan(p)
		return nil, fmt.Errorf("matmul plan %+v: %w", s, err)
	}
	if err := l.check("cublasLtMatmulDescCreate", l.descCreate(&p.desc, int32(s.Compute), DataF32)); err != nil {
		return fail(err)
	}
	for attr, trans := range map[int32]bool{descAttrTransA: s.TransA, descAttrTransB: s.TransB} {
		op := int32(opN)
		if trans {
			op = opT
		}
		if err := l.check("cublasLtMatmulDescSetAttribute", l.descSetAttribute(p.desc, attr, unsafe.Pointer(&op), 4)); err != nil {
			return fail(err)
		}
	}
	rowsA, colsA := s.M, s.K
	if s.TransA {
		rowsA, colsA = s.K, s.M
	}
	rowsB, colsB := s.K, s.N
	if s.TransB {
		rowsB, colsB = s.N, s.K
	}
	for _, lay := range []struct {
		dst        *uintptr
		typ        int
		rows, cols int
	}{{&p.a, s.AType, rowsA, colsA}, {&p.b, s.BType, rowsB, colsB}, {&p.c, s.CType, s.M, s.N}} {
		if err := l.check("cublasLtMatrixLayoutCreate", l.layoutCreate(lay.dst, int32(lay.typ), uint64(lay.rows), uint64(lay.cols), int64(lay.rows))); err != nil {
			return fail(err)
		}
	}
	var pref uintptr
	if err := l.check("cublasLtMatmulPreferenceCreate", l.prefCreate(&pref)); err != nil {
		return fail(err)
	}
	defer l.prefDestroy(pref)
	ws := b.workspace.Size
	if err := l.check("cublasLtMatmulPreferenceSetAttribute", l.prefSetAttribute(pref, prefAttrMaxWorkspace, unsafe.Pointer(&ws), 8)); err != nil {
		return fail(err)
	}
	var n int32
	if err := l.check("cublasLtMatmulAlgoGetHeuristic", l.algoGetHeuristic(b.h, p.desc, p.a, p.b, p.c, p.c, pref, 1, unsafe.Pointer(&p.algo[0]), &n)); err != nil {
		return fail(err)
	}
	if n == 0 {
		return fail(fmt.Errorf("cuBLASLt has no algorithm for this product"))
	}
	if st := *(*int32)(unsafe.Pointer(&p.algo[heuristicStateOff])); st != lastStatusSuccess {
		return fail(l.check("cublasLtMatmulAlgoGetHeuristic (result state)", st))
	}
	p.workspace = *(*uint64)(unsafe.Pointer(&p.algo[heuristicWorkspaceOff]))
	b.plans[s] = p
	return p, nil
}

func (b *Blas) destroyPlan(p *gemmPlan) {
	if p.desc != 0 {
		b.l.descDestroy(p.desc)
	}
	for _, lay := range []uintptr{p.a, p.b, p.c} {
		if lay != 0 {
			b.l.layoutDestroy(lay)
		}
	}
}

// Gemm queues D = alpha·op(A)·op(B) + beta·C with C = D (column-major, lead
// dimensions equal to the row counts) on stream s.
func (b *Blas) Gemm(s GemmShape, alpha float32, a, bm uintptr, beta float32, d uintptr, st Stream) error {
	p, err := b.plan(s)
	if err != nil {
		return err
	}
	code := b.l.matmul(b.h, p.desc, unsafe.Pointer(&alpha), a, p.a, bm, p.b, unsafe.Pointer(&beta), d, p.c, d, p.c,
		unsafe.Pointer(&p.algo[0]), b.workspace.Ptr, b.workspace.Size, uintptr(st))
	return b.l.check("cublasLtMatmul", code)
}

// Close releases the plans, workspace and handle.
func (b *Blas) Close() error {
	for _, p := range b.plans {
		b.destroyPlan(p)
	}
	b.plans = nil
	b.c.Free(b.workspace)
	return b.l.check("cublasLtDestroy", b.l.destroy(b.h))
}
