// Command asmgen writes kernel_amd64.s, the AVX-512 dot-product kernels of
// package bf16 (AVX512-BF16, fp32 FMA for AVX-512 CPUs without it, and
// fp32 FMA in ymm registers for AVX2 CPUs). Go's assembler has no VDPBF16PS, so the generator encodes
// that instruction itself (EVEX.512.F3.0F38.W0 52 /r, register form only) and
// emits it as BYTE directives; everything else is ordinary Go assembly.
//
// Run it with `go generate ./model/bf16`.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"os"
)

func main() {
	out := flag.String("o", "kernel_amd64.s", "output file")
	flag.Parse()
	var b bytes.Buffer
	generate(&b)
	if err := os.WriteFile(*out, b.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
}

// vdpbf16ps encodes VDPBF16PS zmm[dst], zmm[src1], zmm[src2] (Intel operand
// order: dst += src1 · src2, pairwise bf16 products summed into fp32 lanes).
func vdpbf16ps(dst, src1, src2 int) []byte {
	inv := func(v, bit int) byte { return byte(^(v >> bit) & 1) }
	p0 := inv(dst, 3)<<7 | inv(src2, 4)<<6 | inv(src2, 3)<<5 | inv(dst, 4)<<4 | 0b10
	p1 := byte(0)<<7 | byte(^src1&15)<<3 | 1<<2 | 0b10
	p2 := byte(0b10)<<5 | inv(src1, 4)<<3
	modrm := byte(0b11)<<6 | byte(dst&7)<<3 | byte(src2&7)
	return []byte{0x62, p0, p1, p2, 0x52, modrm}
}

// generateAVX2 writes dotPackedAVX2, the kernel for CPUs with AVX2 and FMA
// but no AVX-512: as dotPackedF32 for one row of x, with 8 ymm accumulators
// for the 64 columns of a block.
func generateAVX2(p func(string, ...any)) {
	p("")
	p("// func dotPackedAVX2(w *uint16, x *float32, kpairs int, out *float32)")
	p("//")
	p("// For c < 64: out[c] += sum over q < kpairs, h < 2 of w[q*128+c*2+h] * x[2q+h]:")
	p("// dotPackedF32 for one row, in ymm registers. Requires AVX2 and FMA.")
	p("TEXT ·dotPackedAVX2(SB), NOSPLIT, $0-32")
	p("\tMOVQ w+0(FP), AX")
	p("\tMOVQ x+8(FP), SI")
	p("\tMOVQ kpairs+16(FP), CX")
	p("\tMOVQ out+24(FP), DI")
	p("\tMOVL $0xffff0000, BX")
	p("\tMOVD BX, X15")
	p("\tVPBROADCASTD X15, Y15")
	for a := 0; a < 8; a++ {
		p("\tVXORPS Y%d, Y%d, Y%d", a, a, a)
	}
	p("avx2loop:")
	p("\tVBROADCASTSS (SI), Y13")
	p("\tVBROADCASTSS 4(SI), Y14")
	for c := 0; c < 8; c++ {
		p("\tVMOVDQU %d(AX), Y8", 32*c)
		p("\tVPSLLD $16, Y8, Y9")
		p("\tVPAND Y15, Y8, Y10")
		p("\tVFMADD231PS Y9, Y13, Y%d", c)
		p("\tVFMADD231PS Y10, Y14, Y%d", c)
	}
	p("\tADDQ $256, AX")
	p("\tADDQ $8, SI")
	p("\tDECQ CX")
	p("\tJNZ avx2loop")
	for c := 0; c < 8; c++ {
		p("\tVADDPS %d(DI), Y%d, Y%d", 32*c, c, c)
		p("\tVMOVUPS Y%d, %d(DI)", c, 32*c)
	}
	p("\tVZEROUPPER")
	p("\tRET")
}

// maxRowsF32 is the most rows of x one call of the fp32 kernel handles.
const maxRowsF32 = 4

// generateF32 writes dotPackedF32, the kernel for CPUs with AVX-512 but no
// AVX512_BF16: it widens the packed bf16 weights to fp32 (a dword holds the
// pair (w[2p], w[2p+1]) of one column; shifted left 16 it is w[2p] in fp32,
// masked to its high half it is w[2p+1]) and multiplies them with fp32 x by
// VFMADD231PS, so x is not rounded.
func generateF32(p func(string, ...any)) {
	p("")
	p("// func dotPackedF32(w *uint16, x *float32, ldx int, kpairs int, mr int, out *float32, ldo int)")
	p("//")
	p("// As dotPacked, with x in fp32 (rows of ldx values) and mr up to %d.", maxRowsF32)
	p("// Requires AVX512F.")
	p("TEXT ·dotPackedF32(SB), NOSPLIT, $0-56")
	p("\tMOVQ w+0(FP), AX")
	p("\tMOVQ x+8(FP), SI")
	p("\tMOVQ ldx+16(FP), DX")
	p("\tSHLQ $2, DX")
	xRows := []string{"SI", "R8", "R9", "R10"}
	for i := 1; i < maxRowsF32; i++ {
		p("\tLEAQ (%s)(DX*1), %s", xRows[i-1], xRows[i])
	}
	p("\tMOVQ kpairs+24(FP), CX")
	p("\tMOVQ out+40(FP), DI")
	p("\tMOVQ ldo+48(FP), R15")
	p("\tSHLQ $2, R15")
	p("\tXORQ R13, R13")
	p("\tMOVL $0xffff0000, BX")
	p("\tVPBROADCASTD BX, Z31")
	p("\tMOVQ mr+32(FP), BX")
	for mr := 1; mr <= maxRowsF32; mr++ {
		p("\tCMPQ BX, $%d", mr)
		p("\tJEQ f32mr%d", mr)
	}
	p("\tRET")
	for mr := 1; mr <= maxRowsF32; mr++ {
		p("")
		p("f32mr%d:", mr)
		for a := 0; a < 4*mr; a++ {
			p("\tVPXORD Z%d, Z%d, Z%d", a, a, a)
		}
		p("f32loop%d:", mr)
		for c := 0; c < 4; c++ {
			p("\tVMOVDQU32 %d(AX), Z%d", 64*c, 24+c)
		}
		for c := 0; c < 4; c++ {
			p("\tVPSLLD $16, Z%d, Z%d", 24+c, 16+c) // even k
			p("\tVPANDD Z31, Z%d, Z%d", 24+c, 20+c) // odd k
		}
		for i := 0; i < mr; i++ {
			p("\tVBROADCASTSS (%s)(R13*1), Z28", xRows[i])
			p("\tVBROADCASTSS 4(%s)(R13*1), Z29", xRows[i])
			for c := 0; c < 4; c++ {
				p("\tVFMADD231PS Z%d, Z28, Z%d", 16+c, 4*i+c)
				p("\tVFMADD231PS Z%d, Z29, Z%d", 20+c, 4*i+c)
			}
		}
		p("\tADDQ $256, AX")
		p("\tADDQ $8, R13")
		p("\tDECQ CX")
		p("\tJNZ f32loop%d", mr)
		for i := 0; i < mr; i++ {
			for c := 0; c < 4; c++ {
				a := 4*i + c
				p("\tVADDPS %d(DI), Z%d, Z%d", 64*c, a, a)
				p("\tVMOVUPS Z%d, %d(DI)", a, 64*c)
			}
			if i < mr-1 {
				p("\tADDQ R15, DI")
			}
		}
		p("\tVZEROUPPER")
		p("\tRET")
	}
}

// maxRows is the most rows of x one call handles (4 accumulators per row,
// 24 in all, beside 4 weight and 4 broadcast registers).
const maxRows = 6

func generate(b *bytes.Buffer) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format+"\n", args...) }
	p("// Code generated by internal/asmgen; DO NOT EDIT.")
	p("")
	p("//go:build amd64 && !purego")
	p("")
	p("#include \"textflag.h\"")
	p("")
	p("// func dotPacked(w *uint16, x *uint16, ldx int, kpairs int, mr int, out *float32, ldo int)")
	p("//")
	p("// For i < mr (1..%d) and c < 64: out[i*ldo+c] += sum over p < kpairs, h < 2 of", maxRows)
	p("// w[p*128+c*2+h] * x[i*ldx+2p+h]: one 64-column block of the packed layout")
	p("// (pairs of k for 64 output columns, 256 bytes per pair), bf16 products")
	p("// accumulated in fp32 by VDPBF16PS. ldx and ldo are in elements; kpairs >= 1.")
	p("// Requires AVX512F, AVX512BW and AVX512_BF16.")
	p("TEXT ·dotPacked(SB), NOSPLIT, $0-56")
	p("\tMOVQ w+0(FP), AX")
	p("\tMOVQ x+8(FP), SI")
	p("\tMOVQ ldx+16(FP), DX")
	p("\tSHLQ $1, DX")
	xRows := []string{"SI", "R8", "R9", "R10", "R11", "R12"}
	for i := 1; i < maxRows; i++ {
		p("\tLEAQ (%s)(DX*1), %s", xRows[i-1], xRows[i])
	}
	p("\tMOVQ kpairs+24(FP), CX")
	p("\tMOVQ out+40(FP), DI")
	p("\tMOVQ ldo+48(FP), R15")
	p("\tSHLQ $2, R15")
	p("\tXORQ R13, R13")
	p("\tMOVQ mr+32(FP), BX")
	for mr := 1; mr <= maxRows; mr++ {
		p("\tCMPQ BX, $%d", mr)
		p("\tJEQ mr%d", mr)
	}
	p("\tRET")
	for mr := 1; mr <= maxRows; mr++ {
		// Few rows give few independent accumulator chains; with mr <= 3
		// the loop takes two k pairs per iteration into two sets of
		// accumulators, so that VDPBF16PS's latency does not bound it.
		sets := 1
		if 2*4*mr <= 24 {
			sets = 2
		}
		acc := func(set, i, c int) int { return set*4*mr + 4*i + c }
		p("")
		p("mr%d:", mr)
		for a := 0; a < sets*4*mr; a++ {
			p("\tVPXORD Z%d, Z%d, Z%d", a, a, a)
		}
		pair := func(set, wOff, xOff int) {
			for c := 0; c < 4; c++ {
				p("\tVMOVDQU16 %d(AX), Z%d", wOff+64*c, 24+c)
			}
			for i := 0; i < mr; i++ {
				bx := 28 + i%4
				p("\tVPBROADCASTD %d(%s)(R13*1), Z%d", xOff, xRows[i], bx)
				for c := 0; c < 4; c++ {
					a := acc(set, i, c)
					p("\t%s // VDPBF16PS Z%d, Z%d, Z%d", byteList(vdpbf16ps(a, 24+c, bx)), a, 24+c, bx)
				}
			}
		}
		if sets == 2 {
			p("\tCMPQ CX, $2")
			p("\tJLT single%d", mr)
			p("double%d:", mr)
			pair(0, 0, 0)
			pair(1, 256, 4)
			p("\tADDQ $512, AX")
			p("\tADDQ $8, R13")
			p("\tSUBQ $2, CX")
			p("\tCMPQ CX, $2")
			p("\tJGE double%d", mr)
			p("single%d:", mr)
			p("\tTESTQ CX, CX")
			p("\tJEQ sum%d", mr)
			pair(0, 0, 0)
			p("sum%d:", mr)
			for i := 0; i < mr; i++ {
				for c := 0; c < 4; c++ {
					p("\tVADDPS Z%d, Z%d, Z%d", acc(1, i, c), acc(0, i, c), acc(0, i, c))
				}
			}
		} else {
			p("loop%d:", mr)
			pair(0, 0, 0)
			p("\tADDQ $256, AX")
			p("\tADDQ $4, R13")
			p("\tDECQ CX")
			p("\tJNZ loop%d", mr)
		}
		for i := 0; i < mr; i++ {
			for c := 0; c < 4; c++ {
				a := acc(0, i, c)
				p("\tVADDPS %d(DI), Z%d, Z%d", 64*c, a, a)
				p("\tVMOVUPS Z%d, %d(DI)", a, 64*c)
			}
			if i < mr-1 {
				p("\tADDQ R15, DI")
			}
		}
		p("\tVZEROUPPER")
		p("\tRET")
	}
	generateF32(p)
	generateAVX2(p)
}

func byteList(bs []byte) string {
	var s bytes.Buffer
	for i, c := range bs {
		if i > 0 {
			s.WriteString("; ")
		}
		fmt.Fprintf(&s, "BYTE $0x%02x", c)
	}
	return s.String()
}
