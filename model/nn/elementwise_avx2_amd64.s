//go:build amd64 && !purego

#include "textflag.h"

// AVX2 versions of the erf GELU and of softmax's three passes, 8 lanes at
// a time, for CPUs without AVX-512. They take whole vectors only (n a
// multiple of 8); the Go callers finish the last n%8 elements with the Go
// code. Roundings are the Go code's, as in elementwise_amd64.s.

// Constants that do not fit the 16 Y registers, broadcast from memory.
DATA avx2C<>+0(SB)/4, $0xbb41a1f6  // erf32 p: -2.95459980854025e-03
DATA avx2C<>+4(SB)/4, $0xbc83dbd4  // erf32 p: -1.60960333262415e-02
DATA avx2C<>+8(SB)/4, $0xb77460cd  // erf32 q: -1.45660718464996e-05
DATA avx2C<>+12(SB)/4, $0xb95fbd29 // erf32 q: -2.13374055278905e-04
DATA avx2C<>+16(SB)/4, $0xbadc924e // erf32 q: -1.68282697438203e-03
DATA avx2C<>+20(SB)/4, $0xbbf19bf8 // erf32 q: -7.37332916720468e-03
DATA avx2C<>+24(SB)/4, $0xbc69b6a7 // erf32 q: -1.42647390514189e-02
DATA avx2C<>+28(SB)/4, $0x39500d01 // exp32: 1/5040
DATA avx2C<>+32(SB)/4, $0x3ab60b61 // exp32: 1/720
DATA avx2C<>+36(SB)/4, $0x3c088889 // exp32: 1/120
DATA avx2C<>+40(SB)/4, $0x3d2aaaab // exp32: 1/24
DATA avx2C<>+44(SB)/4, $0x3e2aaaab // exp32: 1/6
GLOBL avx2C<>(SB), RODATA|NOPTR, $48

// YBCAST puts the float32 with bits imm in every lane of y.
#define YBCAST(imm, y) MOVL imm, AX; VMOVD AX, X5; VPBROADCASTD X5, y

// func geluErfAVX2(x *float32, n int)
//
// geluErfAVX512 with 8 lanes, n a multiple of 8. Requires AVX2.
TEXT ·geluErfAVX2(SB), NOSPLIT, $0-16
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX
	YBCAST($0x3fb504f3, Y6)  // float32(√2)
	YBCAST($0x3f000000, Y7)  // 0.5
	YBCAST($0x3f800000, Y8)  // 1
	YBCAST($0x40800000, Y9)  // 4
	YBCAST($0xc0800000, Y10) // -4
	YBCAST($0xaf95df0b, Y11) // p coefficients, highest power first
	YBCAST($0x32edffee, Y12)
	YBCAST($0xb60cff51, Y13)
	YBCAST($0xb86ec2d2, Y14)
	YBCAST($0xba40ac63, Y15)
ygelu_loop:
	CMPQ CX, $8
	JLT  ygelu_done
	VMOVUPS (DI), Y0
	VMULPS  Y6, Y0, Y1
	VMULPS  Y7, Y1, Y1
	VMINPS  Y1, Y9, Y1
	VMAXPS  Y1, Y10, Y1
	VMULPS  Y1, Y1, Y2
	VMULPS  Y11, Y2, Y3
	VADDPS  Y12, Y3, Y3
	VMULPS  Y2, Y3, Y3
	VADDPS  Y13, Y3, Y3
	VMULPS  Y2, Y3, Y3
	VADDPS  Y14, Y3, Y3
	VMULPS  Y2, Y3, Y3
	VADDPS  Y15, Y3, Y3
	VMULPS  Y2, Y3, Y3
	VBROADCASTSS avx2C<>+0(SB), Y5
	VADDPS  Y5, Y3, Y3
	VMULPS  Y2, Y3, Y3
	VBROADCASTSS avx2C<>+4(SB), Y5
	VADDPS  Y5, Y3, Y3
	VMULPS  Y1, Y3, Y3
	VBROADCASTSS avx2C<>+8(SB), Y4
	VMULPS  Y2, Y4, Y4
	VBROADCASTSS avx2C<>+12(SB), Y5
	VADDPS  Y5, Y4, Y4
	VMULPS  Y2, Y4, Y4
	VBROADCASTSS avx2C<>+16(SB), Y5
	VADDPS  Y5, Y4, Y4
	VMULPS  Y2, Y4, Y4
	VBROADCASTSS avx2C<>+20(SB), Y5
	VADDPS  Y5, Y4, Y4
	VMULPS  Y2, Y4, Y4
	VBROADCASTSS avx2C<>+24(SB), Y5
	VADDPS  Y5, Y4, Y4
	VDIVPS  Y4, Y3, Y3
	VADDPS  Y8, Y3, Y3
	VMULPS  Y7, Y0, Y0
	VMULPS  Y3, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  ygelu_loop
ygelu_done:
	VZEROUPPER
	RET

// func maxAVX2(s *float32, n int, m float32) float32
//
// The maximum of m and s[:n] as softmaxRowGo takes it (v replaces m only
// where v > m, so a NaN m stays and later NaNs are skipped), n a multiple
// of 8. Requires AVX2.
TEXT ·maxAVX2(SB), NOSPLIT, $0-28
	MOVQ s+0(FP), DI
	MOVQ n+8(FP), CX
	VBROADCASTSS m+16(FP), Y0
ymax_loop:
	CMPQ CX, $8
	JLT  ymax_reduce
	VMOVUPS (DI), Y1
	VMAXPS  Y0, Y1, Y0
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  ymax_loop
ymax_reduce:
	VEXTRACTF128 $1, Y0, X1
	VMAXPS    X0, X1, X0
	VPERMILPS $0x4e, X0, X1
	VMAXPS    X0, X1, X0
	VPERMILPS $0xb1, X0, X1
	VMAXPS    X0, X1, X0
	MOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func expSumAVX2(s *float32, n int, m float32) float32
//
// s[i] = exp32(s[i] - m) for i < n (n a multiple of 8), returning their
// sum taken in 8 float32 lanes. Requires AVX2.
TEXT ·expSumAVX2(SB), NOSPLIT, $0-28
	MOVQ s+0(FP), DI
	MOVQ n+8(FP), CX
	VBROADCASTSS m+16(FP), Y0
	YBCAST($0xc2ae0000, Y8)  // -87
	YBCAST($0x3fb8aa3b, Y9)  // log2e
	YBCAST($0x3f000000, Y10) // 0.5
	YBCAST($0x3f318000, Y11) // ln2hi
	YBCAST($0xb95e8083, Y12) // ln2lo
	YBCAST($0x3f800000, Y13) // 1
	YBCAST($0x39500d01, Y14) // 1/5040
	YBCAST($0x3ab60b61, Y15) // 1/720
	VXORPS Y7, Y7, Y7
yexp_loop:
	CMPQ CX, $8
	JLT  yexp_reduce
	VMOVUPS (DI), Y1
	VSUBPS  Y0, Y1, Y1
	VCMPPS  $1, Y8, Y1, Y6
	VMULPS  Y9, Y1, Y2
	VSUBPS  Y10, Y2, Y2
	VCVTTPS2DQ Y2, Y3
	VCVTDQ2PS Y3, Y4
	VMULPS  Y11, Y4, Y2
	VSUBPS  Y2, Y1, Y1
	VMULPS  Y12, Y4, Y2
	VSUBPS  Y2, Y1, Y1
	VMULPS  Y14, Y1, Y5
	VADDPS  Y15, Y5, Y5
	VMULPS  Y1, Y5, Y5
	VBROADCASTSS avx2C<>+36(SB), Y2
	VADDPS  Y2, Y5, Y5
	VMULPS  Y1, Y5, Y5
	VBROADCASTSS avx2C<>+40(SB), Y2
	VADDPS  Y2, Y5, Y5
	VMULPS  Y1, Y5, Y5
	VBROADCASTSS avx2C<>+44(SB), Y2
	VADDPS  Y2, Y5, Y5
	VMULPS  Y1, Y5, Y5
	VADDPS  Y10, Y5, Y5
	VMULPS  Y1, Y5, Y5
	VMULPS  Y1, Y5, Y5
	VADDPS  Y1, Y5, Y5
	VADDPS  Y13, Y5, Y5
	VPSLLD  $23, Y3, Y3
	VPADDD  Y3, Y5, Y1
	VANDNPS Y1, Y6, Y1
	VMOVUPS Y1, (DI)
	VADDPS  Y1, Y7, Y7
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  yexp_loop
yexp_reduce:
	VEXTRACTF128 $1, Y7, X1
	VADDPS    X7, X1, X7
	VPERMILPS $0x4e, X7, X1
	VADDPS    X7, X1, X7
	VPERMILPS $0xb1, X7, X1
	VADDPS    X7, X1, X7
	MOVSS X7, ret+24(FP)
	VZEROUPPER
	RET

// func scaleAVX2(s *float32, n int, c float32)
//
// s[i] *= c for i < n, n a multiple of 8. Requires AVX2.
TEXT ·scaleAVX2(SB), NOSPLIT, $0-20
	MOVQ s+0(FP), DI
	MOVQ n+8(FP), CX
	VBROADCASTSS c+16(FP), Y0
yscale_loop:
	CMPQ CX, $8
	JLT  yscale_done
	VMULPS  (DI), Y0, Y1
	VMOVUPS Y1, (DI)
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  yscale_loop
yscale_done:
	VZEROUPPER
	RET
