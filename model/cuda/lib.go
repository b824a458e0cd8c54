// Package cuda binds the NVIDIA libraries blipflow's GPU backend needs —
// the driver API (libcuda.so.1), cuBLASLt and NVRTC — at run time with
// purego, so binaries stay static (no cgo) and run on machines without a
// GPU. Each library is found by its soname; when one is missing the error is
// one line naming it ("no NVIDIA driver: libcuda.so.1 not found").
package cuda

import (
	"fmt"
	"strings"
	"unsafe"

	"github.com/ebitengine/purego"
)

// library is a dlopen'ed shared library and the soname it was found under.
type library struct {
	handle uintptr
	soname string
}

// openLibrary dlopens the first of sonames that loads; what names the
// library in the error ("cuBLASLt not found (tried libcublasLt.so.13, .12)").
func openLibrary(what string, sonames ...string) (*library, error) {
	for _, name := range sonames {
		if h, err := purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_GLOBAL); err == nil {
			return &library{handle: h, soname: name}, nil
		}
	}
	// dlerror's text is long and says the same thing; one line names the sonames.
	if len(sonames) == 1 {
		return nil, fmt.Errorf("%s not found (tried %s)", what, sonames[0])
	}
	short := make([]string, len(sonames))
	for i, s := range sonames {
		if i == 0 {
			short[i] = s
			continue
		}
		short[i] = s[strings.LastIndex(s, ".so")+3:] // ".12"
	}
	return nil, fmt.Errorf("%s not found (tried %s)", what, strings.Join(short, ", "))
}

// binder resolves a library's symbols into Go function variables and
// remembers the first missing one.
type binder struct {
	lib *library
	err error
}

// bind sets fn (a pointer to a func variable) to the first of names the
// library exports (versioned names first: cuMemAlloc_v2, cuMemAlloc).
func (b *binder) bind(fn any, names ...string) {
	if b.err != nil {
		return
	}
	for _, n := range names {
		sym, err := purego.Dlsym(b.lib.handle, n)
		if err == nil && sym != 0 {
			purego.RegisterFunc(fn, sym)
			return
		}
	}
	b.err = fmt.Errorf("%s lacks %s (too old a version?)", b.lib.soname, names[0])
}

// optional is bind for symbols a version may lack; it reports whether fn was
// set.
func (b *binder) optional(fn any, names ...string) bool {
	for _, n := range names {
		sym, err := purego.Dlsym(b.lib.handle, n)
		if err == nil && sym != 0 {
			purego.RegisterFunc(fn, sym)
			return true
		}
	}
	return false
}

// cString copies a NUL-terminated C string.
func cString(p *byte) string {
	if p == nil {
		return ""
	}
	n := 0
	for *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) != 0 {
		n++
	}
	return string(unsafe.Slice(p, n))
}

// cStrings returns NUL-terminated copies of ss and an array of pointers to
// them (char**) for a C call; keep the first result alive across the call.
func cStrings(ss []string) ([][]byte, []*byte) {
	bufs := make([][]byte, len(ss))
	ptrs := make([]*byte, len(ss)+1)
	for i, s := range ss {
		bufs[i] = append([]byte(s), 0)
		ptrs[i] = &bufs[i][0]
	}
	return bufs, ptrs
}
