package cuda

import (
	"fmt"
	"runtime"
	"sync"
)

// NVRTCSonames are the NVRTC libraries tried, newest first.
var NVRTCSonames = []string{"libnvrtc.so.13", "libnvrtc.so.12"}

type nvrtc struct {
	lib *library

	version     func(major, minor *int32) int32
	errorString func(code int32) string
	create      func(prog *uintptr, src, name string, nHeaders int32, headers, includeNames []*byte) int32
	destroy     func(prog *uintptr) int32
	compile     func(prog uintptr, nOptions int32, options []*byte) int32
	logSize     func(prog uintptr, n *uint64) int32
	log         func(prog uintptr, buf []byte) int32
	cubinSize   func(prog uintptr, n *uint64) int32
	cubin       func(prog uintptr, buf []byte) int32
}

var (
	nvrtcOnce sync.Once
	theNVRTC  *nvrtc
	nvrtcErr  error
)

func loadNVRTC() (*nvrtc, error) {
	nvrtcOnce.Do(func() {
		lib, err := openLibrary("NVRTC", NVRTCSonames...)
		if err != nil {
			nvrtcErr = err
			return
		}
		n := &nvrtc{lib: lib}
		b := &binder{lib: lib}
		b.bind(&n.version, "nvrtcVersion")
		b.bind(&n.errorString, "nvrtcGetErrorString")
		b.bind(&n.create, "nvrtcCreateProgram")
		b.bind(&n.destroy, "nvrtcDestroyProgram")
		b.bind(&n.compile, "nvrtcCompileProgram")
		b.bind(&n.logSize, "nvrtcGetProgramLogSize")
		b.bind(&n.log, "nvrtcGetProgramLog")
		b.bind(&n.cubinSize, "nvrtcGetCUBINSize")
		b.bind(&n.cubin, "nvrtcGetCUBIN")
		if b.err != nil {
			nvrtcErr = fmt.Errorf("NVRTC unusable: %w", b.err)
			return
		}
		theNVRTC = n
	})
	return theNVRTC, nvrtcErr
}

func (n *nvrtc) check(call string, code int32) error {
	if code == 0 {
		return nil
	}
	return fmt.Errorf("nvrtc: %s: %s (%d)", call, n.errorString(code), code)
}

// NVRTCVersion returns NVRTC's version as "12.4".
func NVRTCVersion() (string, error) {
	n, err := loadNVRTC()
	if err != nil {
		return "", err
	}
	var major, minor int32
	if err := n.check("nvrtcVersion", n.version(&major, &minor)); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d.%d", major, minor), nil
}

// Compile compiles CUDA C source with NVRTC for a real architecture
// ("sm_90") and returns the cubin. name names the source in messages; a
// compilation error includes NVRTC's log.
func Compile(src, name, arch string, options ...string) ([]byte, error) {
	n, err := loadNVRTC()
	if err != nil {
		return nil, err
	}
	var prog uintptr
	if err := n.check("nvrtcCreateProgram", n.create(&prog, src, name, 0, nil, nil)); err != nil {
		return nil, err
	}
	defer n.destroy(&prog)
	bufs, opts := cStrings(append([]string{"--gpu-architecture=" + arch}, options...))
	code := n.compile(prog, int32(len(opts)-1), opts)
	runtime.KeepAlive(bufs)
	if code != 0 {
		var size uint64
		log := ""
		if n.logSize(prog, &size) == 0 && size > 1 {
			buf := make([]byte, size)
			if n.log(prog, buf) == 0 {
				log = string(buf[:size-1])
			}
		}
		return nil, fmt.Errorf("%w compiling %s for %s:\n%s", n.check("nvrtcCompileProgram", code), name, arch, log)
	}
	var size uint64
	if err := n.check("nvrtcGetCUBINSize", n.cubinSize(prog, &size)); err != nil {
		return nil, err
	}
	out := make([]byte, size)
	if err := n.check("nvrtcGetCUBIN", n.cubin(prog, out)); err != nil {
		return nil, err
	}
	return out, nil
}
