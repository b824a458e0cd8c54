package cuda

import (
	"fmt"
	"sync"
	"unsafe"

	"blipflow/model/device"
)

// DriverSoname is the driver API library every NVIDIA driver installs.
const DriverSoname = "libcuda.so.1"

// Result codes of the driver API that callers act on.
const (
	resultSuccess     = 0
	resultOutOfMemory = 2
	resultNotReady    = 600
)

// ErrOutOfMemory (device.ErrOutOfMemory) is matched by any CUDA or
// cuBLASLt error that means the device ran out of memory, so a scheduler
// can shrink its batch rather than fail.
var ErrOutOfMemory = device.ErrOutOfMemory

// Error is a failed driver call: the call, its CUresult and that code's
// name (cuGetErrorName), e.g. "cuMemAlloc: CUDA_ERROR_OUT_OF_MEMORY (2)".
type Error struct {
	Call string
	Code int
	Name string
}

func (e *Error) Error() string { return fmt.Sprintf("cuda: %s: %s (%d)", e.Call, e.Name, e.Code) }

// Is makes an out-of-memory result match ErrOutOfMemory.
func (e *Error) Is(target error) bool { return target == ErrOutOfMemory && e.Code == resultOutOfMemory }

// driver holds the bound entry points of libcuda.so.1.
type driver struct {
	lib *library

	cuInit                      func(flags uint32) int32
	cuDriverGetVersion          func(v *int32) int32
	cuGetErrorName              func(code int32, s **byte) int32
	cuDeviceGetCount            func(n *int32) int32
	cuDeviceGet                 func(d *int32, ordinal int32) int32
	cuDeviceGetName             func(buf []byte, n int32, d int32) int32
	cuDeviceGetAttribute        func(v *int32, attr int32, d int32) int32
	cuDeviceTotalMem            func(bytes *uint64, d int32) int32
	cuDevicePrimaryCtxRetain    func(ctx *uintptr, d int32) int32
	cuDevicePrimaryCtxRelease   func(d int32) int32
	cuCtxSetCurrent             func(ctx uintptr) int32
	cuCtxSynchronize            func() int32
	cuMemGetInfo                func(free, total *uint64) int32
	cuMemAlloc                  func(p *uintptr, n uint64) int32
	cuMemFree                   func(p uintptr) int32
	cuMemHostAlloc              func(p *unsafe.Pointer, n uint64, flags uint32) int32
	cuMemFreeHost               func(p unsafe.Pointer) int32
	cuMemcpyHtoDAsync           func(dst uintptr, src unsafe.Pointer, n uint64, s uintptr) int32
	cuMemcpyDtoHAsync           func(dst unsafe.Pointer, src uintptr, n uint64, s uintptr) int32
	cuMemcpyDtoDAsync           func(dst, src uintptr, n uint64, s uintptr) int32
	cuMemsetD8Async             func(dst uintptr, v uint8, n uint64, s uintptr) int32
	cuStreamCreate              func(s *uintptr, flags uint32) int32
	cuStreamDestroy             func(s uintptr) int32
	cuStreamSynchronize         func(s uintptr) int32
	cuEventCreate               func(e *uintptr, flags uint32) int32
	cuEventRecord               func(e, s uintptr) int32
	cuEventSynchronize          func(e uintptr) int32
	cuEventElapsedTime          func(ms *float32, start, end uintptr) int32
	cuEventDestroy              func(e uintptr) int32
	cuStreamBeginCapture        func(s uintptr, mode int32) int32
	cuStreamEndCapture          func(s uintptr, g *uintptr) int32
	cuGraphInstantiateWithFlags func(exec *uintptr, g uintptr, flags uint64) int32
	cuGraphLaunch               func(exec, s uintptr) int32
	cuGraphExecDestroy          func(exec uintptr) int32
	cuGraphDestroy              func(g uintptr) int32
	cuModuleLoadData            func(m *uintptr, image []byte) int32
	cuModuleUnload              func(m uintptr) int32
	cuModuleGetFunction         func(f *uintptr, m uintptr, name string) int32
	cuFuncSetAttribute          func(f uintptr, attr int32, v int32) int32
	cuLaunchKernel              func(f uintptr, gx, gy, gz, bx, by, bz, shared uint32, s uintptr, params, extra unsafe.Pointer) int32
}

var (
	driverOnce sync.Once
	theDriver  *driver
	driverErr  error
)

// loadDriver opens libcuda.so.1, binds it and calls cuInit, once.
func loadDriver() (*driver, error) {
	driverOnce.Do(func() {
		lib, err := openLibrary("libcuda.so.1", DriverSoname)
		if err != nil {
			driverErr = fmt.Errorf("no NVIDIA driver: %s not found", DriverSoname)
			return
		}
		d := &driver{lib: lib}
		b := &binder{lib: lib}
		b.bind(&d.cuInit, "cuInit")
		b.bind(&d.cuDriverGetVersion, "cuDriverGetVersion")
		b.bind(&d.cuGetErrorName, "cuGetErrorName")
		b.bind(&d.cuDeviceGetCount, "cuDeviceGetCount")
		b.bind(&d.cuDeviceGet, "cuDeviceGet")
		b.bind(&d.cuDeviceGetName, "cuDeviceGetName")
		b.bind(&d.cuDeviceGetAttribute, "cuDeviceGetAttribute")
		b.bind(&d.cuDeviceTotalMem, "cuDeviceTotalMem_v2")
		b.bind(&d.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain")
		b.bind(&d.cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2", "cuDevicePrimaryCtxRelease")
		b.bind(&d.cuCtxSetCurrent, "cuCtxSetCurrent")
		b.bind(&d.cuCtxSynchronize, "cuCtxSynchronize")
		b.bind(&d.cuMemGetInfo, "cuMemGetInfo_v2")
		b.bind(&d.cuMemAlloc, "cuMemAlloc_v2")
		b.bind(&d.cuMemFree, "cuMemFree_v2")
		b.bind(&d.cuMemHostAlloc, "cuMemHostAlloc")
		b.bind(&d.cuMemFreeHost, "cuMemFreeHost")
		b.bind(&d.cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2")
		b.bind(&d.cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2")
		b.bind(&d.cuMemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2")
		b.bind(&d.cuMemsetD8Async, "cuMemsetD8Async")
		b.bind(&d.cuStreamCreate, "cuStreamCreate")
		b.bind(&d.cuStreamDestroy, "cuStreamDestroy_v2")
		b.bind(&d.cuStreamSynchronize, "cuStreamSynchronize")
		b.bind(&d.cuEventCreate, "cuEventCreate")
		b.bind(&d.cuEventRecord, "cuEventRecord")
		b.bind(&d.cuEventSynchronize, "cuEventSynchronize")
		b.bind(&d.cuEventElapsedTime, "cuEventElapsedTime_v2", "cuEventElapsedTime")
		b.bind(&d.cuEventDestroy, "cuEventDestroy_v2")
		b.bind(&d.cuStreamBeginCapture, "cuStreamBeginCapture_v2")
		b.bind(&d.cuStreamEndCapture, "cuStreamEndCapture")
		b.bind(&d.cuGraphInstantiateWithFlags, "cuGraphInstantiateWithFlags")
		b.bind(&d.cuGraphLaunch, "cuGraphLaunch")
		b.bind(&d.cuGraphExecDestroy, "cuGraphExecDestroy")
		b.bind(&d.cuGraphDestroy, "cuGraphDestroy")
		b.bind(&d.cuModuleLoadData, "cuModuleLoadData")
		b.bind(&d.cuModuleUnload, "cuModuleUnload")
		b.bind(&d.cuModuleGetFunction, "cuModuleGetFunction")
		b.bind(&d.cuFuncSetAttribute, "cuFuncSetAttribute")
		b.bind(&d.cuLaunchKernel, "cuLaunchKernel")
		if b.err != nil {
			driverErr = fmt.Errorf("NVIDIA driver unusable: %w", b.err)
			return
		}
		if err := d.check("cuInit", d.cuInit(0)); err != nil {
			driverErr = fmt.Errorf("NVIDIA driver present but no usable GPU: %w", err)
			return
		}
		theDriver = d
	})
	return theDriver, driverErr
}

// check turns a CUresult into an *Error naming call (nil on success).
func (d *driver) check(call string, code int32) error {
	if code == resultSuccess {
		return nil
	}
	name := fmt.Sprintf("CUDA error %d", code)
	var s *byte
	if d.cuGetErrorName(code, &s) == resultSuccess && s != nil {
		name = cString(s)
	}
	return &Error{Call: call, Code: int(code), Name: name}
}

// Available reports whether the driver loads and initialises, with the
// one-line reason when it does not.
func Available() error {
	_, err := loadDriver()
	return err
}

// DriverVersion returns the driver's CUDA version as major*1000+minor*10
// (12040 for CUDA 12.4).
func DriverVersion() (int, error) {
	d, err := loadDriver()
	if err != nil {
		return 0, err
	}
	var v int32
	if err := d.check("cuDriverGetVersion", d.cuDriverGetVersion(&v)); err != nil {
		return 0, err
	}
	return int(v), nil
}

// DeviceCount returns the number of CUDA devices.
func DeviceCount() (int, error) {
	d, err := loadDriver()
	if err != nil {
		return 0, err
	}
	var n int32
	if err := d.check("cuDeviceGetCount", d.cuDeviceGetCount(&n)); err != nil {
		return 0, err
	}
	return int(n), nil
}
