package cuda

import (
	"fmt"
	"runtime"
	"unsafe"
)

// Device attributes (CUdevice_attribute) the backend reads.
const (
	attrMaxSharedPerBlockOptin = 97
	attrComputeMajor           = 75
	attrComputeMinor           = 76
	attrMultiprocessors        = 16
)

// Context is the primary context of one device. CUDA makes a context
// current per OS thread, so every call that touches the device goes through
// Do, which runs it on one goroutine locked to its thread with the context
// current.
type Context struct {
	d       *driver
	Ordinal int
	dev     int32
	ctx     uintptr
	work    chan func()
	closed  chan struct{}
	setErr  error
	// Name is the card's name; Major and Minor its compute capability.
	Name         string
	Major, Minor int
	// SMs is the number of multiprocessors; MaxSharedOptin the most shared
	// memory a block may ask for.
	SMs, MaxSharedOptin int
	TotalMemory         uint64
}

// Open retains the primary context of device ordinal.
func Open(ordinal int) (*Context, error) {
	d, err := loadDriver()
	if err != nil {
		return nil, err
	}
	n, err := DeviceCount()
	if err != nil {
		return nil, err
	}
	if ordinal < 0 || ordinal >= n {
		return nil, fmt.Errorf("cuda: device %d does not exist (%d device(s))", ordinal, n)
	}
	c := &Context{d: d, Ordinal: ordinal, work: make(chan func()), closed: make(chan struct{})}
	if err := d.check("cuDeviceGet", d.cuDeviceGet(&c.dev, int32(ordinal))); err != nil {
		return nil, err
	}
	if err := d.check("cuDevicePrimaryCtxRetain", d.cuDevicePrimaryCtxRetain(&c.ctx, c.dev)); err != nil {
		return nil, fmt.Errorf("cuda: device %d: %w", ordinal, err)
	}
	go c.loop()
	err = c.Do(func() error {
		name := make([]byte, 256)
		if err := d.check("cuDeviceGetName", d.cuDeviceGetName(name, int32(len(name)), c.dev)); err != nil {
			return err
		}
		c.Name = cString(&name[0])
		for _, a := range []struct {
			attr int32
			dst  *int
		}{{attrComputeMajor, &c.Major}, {attrComputeMinor, &c.Minor}, {attrMultiprocessors, &c.SMs}, {attrMaxSharedPerBlockOptin, &c.MaxSharedOptin}} {
			var v int32
			if err := d.check("cuDeviceGetAttribute", d.cuDeviceGetAttribute(&v, a.attr, c.dev)); err != nil {
				return err
			}
			*a.dst = int(v)
		}
		return d.check("cuDeviceTotalMem", d.cuDeviceTotalMem(&c.TotalMemory, c.dev))
	})
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// loop runs submitted work on one OS thread with the context current.
func (c *Context) loop() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c.setErr = c.d.check("cuCtxSetCurrent", c.d.cuCtxSetCurrent(c.ctx))
	for {
		select {
		case fn := <-c.work:
			fn()
		case <-c.closed:
			return
		}
	}
}

// Do runs fn with the context current and returns its error.
func (c *Context) Do(fn func() error) error {
	done := make(chan error, 1)
	select {
	case c.work <- func() {
		if c.setErr != nil { // read on the loop's goroutine, which wrote it
			done <- c.setErr
			return
		}
		done <- fn()
	}:
	case <-c.closed:
		return fmt.Errorf("cuda: device %d context is closed", c.Ordinal)
	}
	return <-done
}

// Arch is the NVRTC architecture of the card, e.g. "sm_90".
func (c *Context) Arch() string { return fmt.Sprintf("sm_%d%d", c.Major, c.Minor) }

// MemInfo returns the free and total device memory in bytes.
func (c *Context) MemInfo() (free, total uint64, err error) {
	err = c.Do(func() error { return c.d.check("cuMemGetInfo", c.d.cuMemGetInfo(&free, &total)) })
	return free, total, err
}

// Synchronize waits for all work on the context.
func (c *Context) Synchronize() error {
	return c.Do(func() error { return c.d.check("cuCtxSynchronize", c.d.cuCtxSynchronize()) })
}

// Close stops the context's thread and releases the primary context.
func (c *Context) Close() error {
	select {
	case <-c.closed:
		return nil
	default:
	}
	close(c.closed)
	return c.d.check("cuDevicePrimaryCtxRelease", c.d.cuDevicePrimaryCtxRelease(c.dev))
}

// The methods below call the driver directly: call them inside Do.

// Buffer is device memory from cuMemAlloc (never managed memory).
type Buffer struct {
	Ptr  uintptr
	Size uint64
}

// Alloc allocates n bytes of device memory. An out-of-memory failure
// matches ErrOutOfMemory.
func (c *Context) Alloc(n uint64) (Buffer, error) {
	var p uintptr
	if err := c.d.check("cuMemAlloc", c.d.cuMemAlloc(&p, max(n, 1))); err != nil {
		return Buffer{}, fmt.Errorf("allocating %d bytes on %s: %w", n, c.Name, err)
	}
	return Buffer{Ptr: p, Size: n}, nil
}

// Free releases a device buffer.
func (c *Context) Free(b Buffer) error {
	if b.Ptr == 0 {
		return nil
	}
	return c.d.check("cuMemFree", c.d.cuMemFree(b.Ptr))
}

// HostBuffer is page-locked host memory (cuMemHostAlloc), the source and
// destination of asynchronous copies.
type HostBuffer struct {
	p    unsafe.Pointer
	Size uint64
}

// Bytes returns the buffer's memory.
func (h HostBuffer) Bytes() []byte { return unsafe.Slice((*byte)(h.p), h.Size) }

// Float32s returns the buffer's memory as float32 values.
func (h HostBuffer) Float32s() []float32 { return unsafe.Slice((*float32)(h.p), h.Size/4) }

// Int32s returns the buffer's memory as int32 values.
func (h HostBuffer) Int32s() []int32 { return unsafe.Slice((*int32)(h.p), h.Size/4) }

// AllocHost allocates n bytes of pinned host memory.
func (c *Context) AllocHost(n uint64) (HostBuffer, error) {
	var p unsafe.Pointer
	if err := c.d.check("cuMemHostAlloc", c.d.cuMemHostAlloc(&p, max(n, 1), 0)); err != nil {
		return HostBuffer{}, fmt.Errorf("allocating %d pinned host bytes: %w", n, err)
	}
	return HostBuffer{p: p, Size: n}, nil
}

// FreeHost releases pinned host memory.
func (c *Context) FreeHost(h HostBuffer) error {
	if h.p == nil {
		return nil
	}
	return c.d.check("cuMemFreeHost", c.d.cuMemFreeHost(h.p))
}

// Stream is an ordered queue of device work.
type Stream uintptr

// NewStream creates a non-blocking stream.
func (c *Context) NewStream() (Stream, error) {
	var s uintptr
	err := c.d.check("cuStreamCreate", c.d.cuStreamCreate(&s, 1 /* CU_STREAM_NON_BLOCKING */))
	return Stream(s), err
}

// DestroyStream releases a stream.
func (c *Context) DestroyStream(s Stream) error {
	return c.d.check("cuStreamDestroy", c.d.cuStreamDestroy(uintptr(s)))
}

// SyncStream waits for the stream's work.
func (c *Context) SyncStream(s Stream) error {
	return c.d.check("cuStreamSynchronize", c.d.cuStreamSynchronize(uintptr(s)))
}

// CopyToDevice queues a copy of n bytes from src (pinned for a truly
// asynchronous copy) to dst+off.
func (c *Context) CopyToDevice(dst uintptr, src unsafe.Pointer, n uint64, s Stream) error {
	return c.d.check("cuMemcpyHtoDAsync", c.d.cuMemcpyHtoDAsync(dst, src, n, uintptr(s)))
}

// CopyToHost queues a copy of n bytes from device src to dst.
func (c *Context) CopyToHost(dst unsafe.Pointer, src uintptr, n uint64, s Stream) error {
	return c.d.check("cuMemcpyDtoHAsync", c.d.cuMemcpyDtoHAsync(dst, src, n, uintptr(s)))
}

// CopyDevice queues a device-to-device copy.
func (c *Context) CopyDevice(dst, src uintptr, n uint64, s Stream) error {
	return c.d.check("cuMemcpyDtoDAsync", c.d.cuMemcpyDtoDAsync(dst, src, n, uintptr(s)))
}

// Memset queues setting n bytes at dst to v.
func (c *Context) Memset(dst uintptr, v byte, n uint64, s Stream) error {
	return c.d.check("cuMemsetD8Async", c.d.cuMemsetD8Async(dst, v, n, uintptr(s)))
}

// Event marks a point in a stream.
type Event uintptr

// NewEvent creates an event that records timing.
func (c *Context) NewEvent() (Event, error) {
	var e uintptr
	err := c.d.check("cuEventCreate", c.d.cuEventCreate(&e, 0))
	return Event(e), err
}

// Record marks the event at the stream's current end.
func (c *Context) Record(e Event, s Stream) error {
	return c.d.check("cuEventRecord", c.d.cuEventRecord(uintptr(e), uintptr(s)))
}

// WaitEvent blocks until the event has happened.
func (c *Context) WaitEvent(e Event) error {
	return c.d.check("cuEventSynchronize", c.d.cuEventSynchronize(uintptr(e)))
}

// Elapsed returns the milliseconds between two recorded events.
func (c *Context) Elapsed(start, end Event) (float32, error) {
	var ms float32
	err := c.d.check("cuEventElapsedTime", c.d.cuEventElapsedTime(&ms, uintptr(start), uintptr(end)))
	return ms, err
}

// DestroyEvent releases an event.
func (c *Context) DestroyEvent(e Event) error {
	return c.d.check("cuEventDestroy", c.d.cuEventDestroy(uintptr(e)))
}

// GraphExec is an instantiated CUDA graph, replayed with Launch.
type GraphExec uintptr

// Capture records the work fn queues on s (which must not be the legacy
// default stream) into a CUDA graph and instantiates it. Nothing runs
// during capture.
func (c *Context) Capture(s Stream, fn func() error) (GraphExec, error) {
	// Relaxed: the work may allocate (cuMemAlloc) the buffers the graph
	// keeps while it is captured.
	const modeRelaxed = 2 // CU_STREAM_CAPTURE_MODE_RELAXED
	if err := c.d.check("cuStreamBeginCapture", c.d.cuStreamBeginCapture(uintptr(s), modeRelaxed)); err != nil {
		return 0, err
	}
	fnErr := fn()
	var g uintptr
	endErr := c.d.check("cuStreamEndCapture", c.d.cuStreamEndCapture(uintptr(s), &g))
	if fnErr != nil || endErr != nil {
		if g != 0 {
			c.d.cuGraphDestroy(g)
		}
		if fnErr != nil {
			return 0, fmt.Errorf("cuda: capturing a graph: %w", fnErr)
		}
		return 0, endErr
	}
	defer c.d.cuGraphDestroy(g)
	var exec uintptr
	if err := c.d.check("cuGraphInstantiateWithFlags", c.d.cuGraphInstantiateWithFlags(&exec, g, 0)); err != nil {
		return 0, err
	}
	return GraphExec(exec), nil
}

// Launch replays an instantiated graph on s.
func (c *Context) Launch(g GraphExec, s Stream) error {
	return c.d.check("cuGraphLaunch", c.d.cuGraphLaunch(uintptr(g), uintptr(s)))
}

// DestroyGraph releases an instantiated graph.
func (c *Context) DestroyGraph(g GraphExec) error {
	return c.d.check("cuGraphExecDestroy", c.d.cuGraphExecDestroy(uintptr(g)))
}

// Module is loaded device code (a cubin or PTX image).
type Module struct {
	c *Context
	m uintptr
}

// LoadModule loads a cubin or NUL-terminated PTX image.
func (c *Context) LoadModule(image []byte) (*Module, error) {
	var m uintptr
	if err := c.d.check("cuModuleLoadData", c.d.cuModuleLoadData(&m, image)); err != nil {
		return nil, err
	}
	return &Module{c: c, m: m}, nil
}

// Function looks up a kernel by its (extern "C") name.
func (m *Module) Function(name string) (Function, error) {
	var f uintptr
	if err := m.c.d.check("cuModuleGetFunction", m.c.d.cuModuleGetFunction(&f, m.m, name)); err != nil {
		return Function{}, fmt.Errorf("kernel %s: %w", name, err)
	}
	return Function{c: m.c, f: f, Name: name}, nil
}

// Unload releases the module.
func (m *Module) Unload() error { return m.c.d.check("cuModuleUnload", m.c.d.cuModuleUnload(m.m)) }

// Function is one kernel of a module.
type Function struct {
	c    *Context
	f    uintptr
	Name string
}

// SetMaxShared lets launches of f use up to n bytes of dynamic shared
// memory (above the 48 KiB default).
func (f Function) SetMaxShared(n int) error {
	const attrMaxDynamicShared = 8 // CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
	return f.c.d.check("cuFuncSetAttribute", f.c.d.cuFuncSetAttribute(f.f, attrMaxDynamicShared, int32(n)))
}

// Dim3 is a grid or block size.
type Dim3 struct{ X, Y, Z uint32 }

// Launch queues f on s with the given grid, block, dynamic shared memory
// and arguments. Each argument must be a fixed-size value the kernel
// expects: uintptr (device pointers), int32, uint32, int64, uint64 or
// float32.
func (f Function) Launch(grid, block Dim3, shared int, s Stream, args ...any) error {
	params, err := kernelParams(args)
	if err != nil {
		return fmt.Errorf("kernel %s: %w", f.Name, err)
	}
	var p unsafe.Pointer
	if len(params) > 0 {
		p = unsafe.Pointer(&params[0])
	}
	grid, block = grid.norm(), block.norm()
	code := f.c.d.cuLaunchKernel(f.f, grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z, uint32(shared), uintptr(s), p, nil)
	runtime.KeepAlive(params)
	if err := f.c.d.check("cuLaunchKernel", code); err != nil {
		return fmt.Errorf("kernel %s grid %v block %v: %w", f.Name, grid, block, err)
	}
	return nil
}

// kernelParams returns cuLaunchKernel's array of pointers to each argument's
// value (copied, so the caller's variables may change).
func kernelParams(args []any) ([]unsafe.Pointer, error) {
	params := make([]unsafe.Pointer, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case uintptr:
			params[i] = unsafe.Pointer(&v)
		case int32:
			params[i] = unsafe.Pointer(&v)
		case uint32:
			params[i] = unsafe.Pointer(&v)
		case int64:
			params[i] = unsafe.Pointer(&v)
		case uint64:
			params[i] = unsafe.Pointer(&v)
		case float32:
			params[i] = unsafe.Pointer(&v)
		default:
			return nil, fmt.Errorf("argument %d has unsupported type %T (want a fixed-size number or a device pointer)", i, a)
		}
	}
	return params, nil
}

func (d Dim3) norm() Dim3 {
	if d.Y == 0 {
		d.Y = 1
	}
	if d.Z == 0 {
		d.Z = 1
	}
	return d
}
