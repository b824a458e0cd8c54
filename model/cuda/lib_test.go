package cuda

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/ebitengine/purego"
)

// haveLibrary reports whether soname loads on this machine.
func haveLibrary(soname string) bool {
	h, err := purego.Dlopen(soname, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return false
	}
	purego.Dlclose(h)
	return true
}

func TestMissingDriverIsOneLine(t *testing.T) {
	if haveLibrary(DriverSoname) {
		t.Skip("hardware: this machine has an NVIDIA driver")
	}
	err := Available()
	if err == nil || err.Error() != "no NVIDIA driver: libcuda.so.1 not found" {
		t.Fatalf("Available() = %v, want the one-line missing-driver message", err)
	}
	if _, err := Open(0); err == nil || !strings.Contains(err.Error(), "libcuda.so.1") {
		t.Fatalf("Open(0) = %v, want the missing-driver error", err)
	}
	if _, err := DeviceCount(); err == nil {
		t.Fatal("DeviceCount succeeded without a driver")
	}
}

func TestMissingLibrariesNameWhatWasTried(t *testing.T) {
	for _, tc := range []struct {
		sonames []string
		load    func() error
		want    string
	}{
		{CublasLtSonames, func() error { _, err := loadCublasLt(); return err }, "cuBLASLt not found (tried libcublasLt.so.13, .12)"},
		{NVRTCSonames, func() error { _, err := NVRTCVersion(); return err }, "NVRTC not found (tried libnvrtc.so.13, .12)"},
	} {
		present := false
		for _, s := range tc.sonames {
			present = present || haveLibrary(s)
		}
		if present {
			continue
		}
		if err := tc.load(); err == nil || err.Error() != tc.want {
			t.Errorf("load = %v, want %q", err, tc.want)
		}
	}
	if _, err := Compile("", "x.cu", "sm_80"); err == nil && !haveLibrary(NVRTCSonames[0]) && !haveLibrary(NVRTCSonames[1]) {
		t.Error("Compile succeeded without NVRTC")
	}
}

func TestOpenLibraryTriesEachSoname(t *testing.T) {
	lib, err := openLibrary("libm", "libblipflow-absent.so.9", "libm.so.6")
	if err != nil {
		t.Fatalf("openLibrary fell over on the second candidate: %v", err)
	}
	if lib.soname != "libm.so.6" {
		t.Fatalf("opened %s, want libm.so.6", lib.soname)
	}
	_, err = openLibrary("widget", "libwidget.so.3", "libwidget.so.2")
	if err == nil || err.Error() != "widget not found (tried libwidget.so.3, .2)" {
		t.Fatalf("err = %v", err)
	}
}

func TestBinderReportsMissingSymbolAndBindsPresentOnes(t *testing.T) {
	lib, err := openLibrary("libm", "libm.so.6")
	if err != nil {
		t.Skipf("no libm.so.6: %v", err)
	}
	b := &binder{lib: lib}
	var cos func(float64) float64
	b.bind(&cos, "cos_v2_absent", "cos")
	if b.err != nil {
		t.Fatalf("bind cos: %v", b.err)
	}
	if got := cos(0); got != 1 {
		t.Fatalf("cos(0) through purego = %v", got)
	}
	var missing func() int32
	b.bind(&missing, "cuInit")
	if b.err == nil || b.err.Error() != "libm.so.6 lacks cuInit (too old a version?)" {
		t.Fatalf("err = %v", b.err)
	}
	if b.optional(&missing, "cuInit") {
		t.Fatal("optional found cuInit in libm")
	}
}

func TestErrorsNameTheCallAndMatchOutOfMemory(t *testing.T) {
	oom := &Error{Call: "cuMemAlloc", Code: resultOutOfMemory, Name: "CUDA_ERROR_OUT_OF_MEMORY"}
	wrapped := fmt.Errorf("kv cache: %w", oom)
	if !errors.Is(wrapped, ErrOutOfMemory) {
		t.Fatal("a wrapped CUDA_ERROR_OUT_OF_MEMORY does not match ErrOutOfMemory")
	}
	if got := oom.Error(); got != "cuda: cuMemAlloc: CUDA_ERROR_OUT_OF_MEMORY (2)" {
		t.Fatalf("Error() = %q", got)
	}
	other := &Error{Call: "cuLaunchKernel", Code: 700, Name: "CUDA_ERROR_ILLEGAL_ADDRESS"}
	if errors.Is(other, ErrOutOfMemory) {
		t.Fatal("an illegal address matches ErrOutOfMemory")
	}
	if !errors.Is(&BlasError{Status: lastStatusAllocFailed}, ErrOutOfMemory) || errors.Is(&BlasError{Status: 7}, ErrOutOfMemory) {
		t.Fatal("cuBLASLt allocation failure mapping is wrong")
	}
}

func TestCStrings(t *testing.T) {
	bufs, ptrs := cStrings([]string{"--gpu-architecture=sm_90", "-default-device"})
	if len(ptrs) != 3 || ptrs[2] != nil {
		t.Fatalf("want a NULL-terminated array of 2, got %d entries", len(ptrs))
	}
	if got := cString(ptrs[1]); got != "-default-device" {
		t.Fatalf("cString = %q", got)
	}
	if cString(nil) != "" {
		t.Fatal("cString(nil) is not empty")
	}
	_ = bufs
}

func TestGPUMachineOpensDevice(t *testing.T) {
	if os.Getenv("BLIPFLOW_REQUIRE_CUDA") == "" && !haveLibrary(DriverSoname) {
		t.Skip("hardware: no NVIDIA driver (set BLIPFLOW_REQUIRE_CUDA=1 on a GPU machine to require it)")
	}
	c, err := Open(0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	free, total, err := c.MemInfo()
	if err != nil || free == 0 || free > total {
		t.Fatalf("MemInfo = %d, %d, %v", free, total, err)
	}
	t.Logf("%s (%s), %d SMs, %d MiB free of %d", c.Name, c.Arch(), c.SMs, free>>20, total>>20)
	err = c.Do(func() error {
		buf, err := c.Alloc(1 << 20)
		if err != nil {
			return err
		}
		defer c.Free(buf)
		host, err := c.AllocHost(1 << 20)
		if err != nil {
			return err
		}
		defer c.FreeHost(host)
		s, err := c.NewStream()
		if err != nil {
			return err
		}
		defer c.DestroyStream(s)
		f := host.Float32s()
		for i := range f {
			f[i] = float32(i)
		}
		if err := c.CopyToDevice(buf.Ptr, host.p, host.Size, s); err != nil {
			return err
		}
		if err := c.Memset(buf.Ptr, 0, 4, s); err != nil {
			return err
		}
		clear(f)
		if err := c.CopyToHost(host.p, buf.Ptr, host.Size, s); err != nil {
			return err
		}
		if err := c.SyncStream(s); err != nil {
			return err
		}
		if f[0] != 0 || f[1000] != 1000 {
			return fmt.Errorf("round trip gave %v, %v", f[0], f[1000])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestKernelParamsPointAtCopiesOfEachArgument(t *testing.T) {
	ptr, n, rows, scale := uintptr(0xdead0000), int32(-7), int64(1<<40), float32(0.125)
	params, err := kernelParams([]any{ptr, n, rows, scale, uint32(3), uint64(9)})
	if err != nil {
		t.Fatal(err)
	}
	ptr, n = 0, 0 // the launch must not see later changes
	if *(*uintptr)(params[0]) != 0xdead0000 || *(*int32)(params[1]) != -7 || *(*int64)(params[2]) != 1<<40 ||
		*(*float32)(params[3]) != 0.125 || *(*uint32)(params[4]) != 3 || *(*uint64)(params[5]) != 9 {
		t.Fatal("a parameter does not point at its argument's value")
	}
	if _, err := kernelParams([]any{1}); err == nil || !strings.Contains(err.Error(), "int") {
		t.Fatalf("a plain int (platform-sized) was accepted: %v", err)
	}
}
