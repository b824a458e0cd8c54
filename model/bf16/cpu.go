package bf16

import (
	"strings"

	"golang.org/x/sys/cpu"
)

// features is the part of the CPU's feature set the kernels depend on.
type features struct {
	AVX512F, AVX512BW, AVX512BF16 bool
	AMXTile, AMXBF16              bool
}

func hostFeatures() features {
	return features{
		AVX512F:    cpu.X86.HasAVX512F,
		AVX512BW:   cpu.X86.HasAVX512BW,
		AVX512BF16: cpu.X86.HasAVX512BF16,
		AMXTile:    cpu.X86.HasAMXTile,
		AMXBF16:    cpu.X86.HasAMXBF16,
	}
}

func (f features) String() string {
	var s []string
	add := func(ok bool, name string) {
		if ok {
			s = append(s, name)
		}
	}
	add(f.AVX512F, "avx512f")
	add(f.AVX512BW, "avx512bw")
	add(f.AVX512BF16, "avx512_bf16")
	add(f.AMXTile, "amx_tile")
	add(f.AMXBF16, "amx_bf16")
	if len(s) == 0 {
		return "no avx512/amx"
	}
	return strings.Join(s, " ")
}

// Supported reports whether the CPU has native bf16 arithmetic
// (AVX512_BF16 or AMX-BF16), and lists the relevant features it has.
func Supported() (native bool, features string) {
	f := hostFeatures()
	return f.AVX512BF16 || (f.AMXTile && f.AMXBF16), f.String()
}
