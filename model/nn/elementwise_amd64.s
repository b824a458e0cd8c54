//go:build amd64 && !purego

#include "textflag.h"

// AVX-512F kernels for the elementwise float32 operations of kernels.go.
// Each evaluates the same formula as its Go reference (geluErfGo with
// erf32, softmaxRowGo with exp32), with the same float32 constants, 16
// lanes at a time, operation for operation: multiply-adds stay a rounded
// multiply and a rounded add, as the Go compiler emits them by default
// (GOAMD64=v1), so each lane gives the Go code's bits. Only softmax's sum
// is added in another order. Lengths that are not a multiple of 16 finish
// with one masked load and store (K1).

// BCAST puts the float32 with bits imm in every lane of z.
#define BCAST(imm, z) MOVL imm, AX; VPBROADCASTD AX, z

// TAILMASK sets K1 to the low n&15 bits, n in CX (clobbers AX, BX).
#define TAILMASK MOVQ CX, BX; ANDQ $15, CX; MOVL $1, AX; SHLL CX, AX; DECL AX; KMOVW AX, K1; MOVQ BX, CX

// GELU replaces Z0 with 0.5·v·(1 + erf32(v·√2/2)), v = Z0, step by step
// as geluErfGo: x = v·float32(√2)/2, clamped to [-4, 4] (the min and max
// take x as their second operand, so a NaN x stays NaN), erf = x·p(x²)/q(x²)
// by Horner and a true division, then (0.5·v)·(1 + erf). It uses
// Z1-Z4 and the constants in Z15-Z31 that geluErfAVX512 loads.
#define GELU \
	VMULPS  Z16, Z0, Z1; \
	VMULPS  Z17, Z1, Z1; \
	VMINPS  Z1, Z19, Z1; \
	VMAXPS  Z1, Z20, Z1; \
	VMULPS  Z1, Z1, Z2; \
	VMULPS  Z21, Z2, Z3; \
	VADDPS  Z22, Z3, Z3; \
	VMULPS  Z2, Z3, Z3; \
	VADDPS  Z23, Z3, Z3; \
	VMULPS  Z2, Z3, Z3; \
	VADDPS  Z24, Z3, Z3; \
	VMULPS  Z2, Z3, Z3; \
	VADDPS  Z25, Z3, Z3; \
	VMULPS  Z2, Z3, Z3; \
	VADDPS  Z26, Z3, Z3; \
	VMULPS  Z2, Z3, Z3; \
	VADDPS  Z27, Z3, Z3; \
	VMULPS  Z1, Z3, Z3; \
	VMULPS  Z15, Z2, Z4; \
	VADDPS  Z28, Z4, Z4; \
	VMULPS  Z2, Z4, Z4; \
	VADDPS  Z29, Z4, Z4; \
	VMULPS  Z2, Z4, Z4; \
	VADDPS  Z30, Z4, Z4; \
	VMULPS  Z2, Z4, Z4; \
	VADDPS  Z31, Z4, Z4; \
	VDIVPS  Z4, Z3, Z3; \
	VADDPS  Z18, Z3, Z3; \
	VMULPS  Z17, Z0, Z0; \
	VMULPS  Z3, Z0, Z0

// func geluErfAVX512(x *float32, n int)
//
// x[i] = 0.5·x[i]·(1 + erf32(x[i]·√2/2)) for i < n, in place. Requires AVX512F.
TEXT ·geluErfAVX512(SB), NOSPLIT, $0-16
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX
	BCAST($0x3fb504f3, Z16) // float32(√2)
	BCAST($0x3f000000, Z17) // 0.5
	BCAST($0x3f800000, Z18) // 1
	BCAST($0x40800000, Z19) // 4
	BCAST($0xc0800000, Z20) // -4
	BCAST($0xaf95df0b, Z21) // p coefficients, highest power first
	BCAST($0x32edffee, Z22)
	BCAST($0xb60cff51, Z23)
	BCAST($0xb86ec2d2, Z24)
	BCAST($0xba40ac63, Z25)
	BCAST($0xbb41a1f6, Z26)
	BCAST($0xbc83dbd4, Z27)
	BCAST($0xb77460cd, Z15) // q coefficients, highest power first
	BCAST($0xb95fbd29, Z28)
	BCAST($0xbadc924e, Z29)
	BCAST($0xbbf19bf8, Z30)
	BCAST($0xbc69b6a7, Z31)
	TAILMASK

gelu_loop:
	CMPQ CX, $16
	JLT  gelu_tail
	VMOVUPS (DI), Z0
	GELU
	VMOVUPS Z0, (DI)
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  gelu_loop

gelu_tail:
	TESTQ CX, CX
	JEQ   gelu_done
	VMOVUPS.Z (DI), K1, Z0
	GELU
	VMOVUPS Z0, K1, (DI)

gelu_done:
	VZEROUPPER
	RET

// EXP replaces Z1 (x = v - max, x <= 0 or NaN) with exp32(x), step by
// step as exp32: k = int32(x·log2e - 0.5) (exp32's rounding for x <= 0;
// x = 0 gives k = 0 on either of its branches), r = x - k·ln2hi - k·ln2lo,
// p = 1 + r + r²·(Taylor terms to r⁵/5040), 2^k added to the exponent
// bits, and 0 where x < -87. It uses Z2-Z5, K2 and the constants in
// Z17-Z27 that softmaxAVX512 loads.
#define EXP \
	VCMPPS  $1, Z17, Z1, K2; \
	VMULPS  Z18, Z1, Z2; \
	VSUBPS  Z19, Z2, Z2; \
	VCVTTPS2DQ Z2, Z3; \
	VCVTDQ2PS Z3, Z4; \
	VMULPS  Z20, Z4, Z2; \
	VSUBPS  Z2, Z1, Z1; \
	VMULPS  Z21, Z4, Z2; \
	VSUBPS  Z2, Z1, Z1; \
	VMULPS  Z22, Z1, Z5; \
	VADDPS  Z23, Z5, Z5; \
	VMULPS  Z1, Z5, Z5; \
	VADDPS  Z24, Z5, Z5; \
	VMULPS  Z1, Z5, Z5; \
	VADDPS  Z25, Z5, Z5; \
	VMULPS  Z1, Z5, Z5; \
	VADDPS  Z26, Z5, Z5; \
	VMULPS  Z1, Z5, Z5; \
	VADDPS  Z19, Z5, Z5; \
	VMULPS  Z1, Z5, Z5; \
	VMULPS  Z1, Z5, Z5; \
	VADDPS  Z1, Z5, Z5; \
	VADDPS  Z27, Z5, Z5; \
	VPSLLD  $23, Z3, Z3; \
	VPADDD  Z3, Z5, Z1; \
	VPXORD  Z1, Z1, K2, Z1

// func softmaxAVX512(s *float32, n int)
//
// s = softmax(s) for n >= 1 elements, as softmaxRowGo: the maximum (a NaN
// s[0] makes every result NaN, later NaNs are skipped by it), exp32(v -
// max), their sum and a multiplication by 1/sum. The sum is kept in 16
// float32 lanes added pairwise at the end, not left to right. Requires
// AVX512F.
TEXT ·softmaxAVX512(SB), NOSPLIT, $0-16
	MOVQ s+0(FP), SI
	MOVQ n+8(FP), CX
	TAILMASK
	MOVQ CX, R8
	ANDQ $-16, R8 // elements in full vectors

	// Pass 1: the maximum, lanes starting from s[0] as m := s[0] does.
	VBROADCASTSS (SI), Z0
	MOVQ SI, DI
	MOVQ R8, DX
max_loop:
	TESTQ DX, DX
	JEQ   max_tail
	VMOVUPS (DI), Z1
	VMAXPS  Z0, Z1, Z0 // m = v > m ? v : m
	ADDQ $64, DI
	SUBQ $16, DX
	JMP  max_loop
max_tail:
	CMPQ CX, R8
	JEQ  max_reduce
	VMOVUPS.Z (DI), K1, Z1
	VMAXPS  Z0, Z1, K1, Z0
max_reduce:
	VEXTRACTF64X4 $1, Z0, Y1
	VMAXPS    Y0, Y1, Y0
	VEXTRACTF128 $1, Y0, X1
	VMAXPS    X0, X1, X0
	VPERMILPS $0x4e, X0, X1
	VMAXPS    X0, X1, X0
	VPERMILPS $0xb1, X0, X1
	VMAXPS    X0, X1, X0
	VBROADCASTSS X0, Z0

	// Pass 2: s[i] = exp32(s[i] - m), summed in Z8.
	BCAST($0xc2ae0000, Z17) // -87
	BCAST($0x3fb8aa3b, Z18) // log2e
	BCAST($0x3f000000, Z19) // 0.5
	BCAST($0x3f318000, Z20) // ln2hi
	BCAST($0xb95e8083, Z21) // ln2lo
	BCAST($0x39500d01, Z22) // 1/5040
	BCAST($0x3ab60b61, Z23) // 1/720
	BCAST($0x3c088889, Z24) // 1/120
	BCAST($0x3d2aaaab, Z25) // 1/24
	BCAST($0x3e2aaaab, Z26) // 1/6
	BCAST($0x3f800000, Z27) // 1
	VPXORD Z8, Z8, Z8
	MOVQ SI, DI
	MOVQ R8, DX
exp_loop:
	TESTQ DX, DX
	JEQ   exp_tail
	VMOVUPS (DI), Z1
	VSUBPS  Z0, Z1, Z1
	EXP
	VMOVUPS Z1, (DI)
	VADDPS  Z1, Z8, Z8
	ADDQ $64, DI
	SUBQ $16, DX
	JMP  exp_loop
exp_tail:
	CMPQ CX, R8
	JEQ  sum_reduce
	VMOVUPS.Z (DI), K1, Z1
	VSUBPS  Z0, Z1, Z1
	EXP
	VMOVUPS Z1, K1, (DI)
	VADDPS  Z1, Z8, K1, Z8
sum_reduce:
	VEXTRACTF64X4 $1, Z8, Y1
	VADDPS    Y8, Y1, Y8
	VEXTRACTF128 $1, Y8, X1
	VADDPS    X8, X1, X8
	VPERMILPS $0x4e, X8, X1
	VADDPS    X8, X1, X8
	VPERMILPS $0xb1, X8, X1
	VADDPS    X8, X1, X8
	VBROADCASTSS X8, Z8
	VDIVPS    Z8, Z27, Z8 // 1/sum in every lane

	// Pass 3: s[i] *= 1/sum.
	MOVQ SI, DI
	MOVQ R8, DX
scale_loop:
	TESTQ DX, DX
	JEQ   scale_tail
	VMULPS (DI), Z8, Z1
	VMOVUPS Z1, (DI)
	ADDQ $64, DI
	SUBQ $16, DX
	JMP  scale_loop
scale_tail:
	CMPQ CX, R8
	JEQ  softmax_done
	VMOVUPS.Z (DI), K1, Z1
	VMULPS  Z1, Z8, Z1
	VMOVUPS Z1, K1, (DI)
softmax_done:
	VZEROUPPER
	RET

// func reluAVX512(x *float32, n int)
//
// x[i] = 0 where x[i] < 0, for i < n, in place: max(0, v) with v as the
// second operand, which a NaN or -0 v comes out of unchanged, as from the
// Go loop. Requires AVX512F.
TEXT ·reluAVX512(SB), NOSPLIT, $0-16
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX
	TAILMASK
	VPXORD Z16, Z16, Z16

relu_loop:
	CMPQ CX, $16
	JLT  relu_tail
	VMOVUPS (DI), Z0
	VMAXPS  Z0, Z16, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  relu_loop

relu_tail:
	TESTQ CX, CX
	JEQ   relu_done
	VMOVUPS.Z (DI), K1, Z0
	VMAXPS  Z0, Z16, Z0
	VMOVUPS Z0, K1, (DI)

relu_done:
	VZEROUPPER
	RET

// REDUCEPD adds the 8 float64 lanes of Z0 into the low lane of X0 (uses Z1).
#define REDUCEPD \
	VEXTRACTF64X4 $1, Z0, Y1; \
	VADDPD    Y1, Y0, Y0; \
	VEXTRACTF128 $1, Y0, X1; \
	VADDPD    X1, X0, X0; \
	VPERMILPD $1, X0, X1; \
	VADDSD    X1, X0, X0

// func sumF64AVX512(x *float32, n int) float64
//
// The sum of x[:n] in float64, n a multiple of 8, in 8 float64 lanes.
// Requires AVX512F.
TEXT ·sumF64AVX512(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX
	VPXORQ Z0, Z0, Z0
	VPXORQ Z2, Z2, Z2
sum_pair:
	CMPQ CX, $16
	JLT  sum_one
	VCVTPS2PD (DI), Z3
	VCVTPS2PD 32(DI), Z4
	VADDPD Z3, Z0, Z0
	VADDPD Z4, Z2, Z2
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  sum_pair
sum_one:
	CMPQ CX, $8
	JLT  sum_reduce
	VCVTPS2PD (DI), Z3
	VADDPD Z3, Z0, Z0
sum_reduce:
	VADDPD Z2, Z0, Z0
	REDUCEPD
	MOVSD X0, ret+16(FP)
	VZEROUPPER
	RET

// func sumSqDevF64AVX512(x *float32, n int, mean float64) float64
//
// The sum of (float64(x[i]) - mean)² for i < n, n a multiple of 8, in 8
// float64 lanes (each square rounded before it is added, as in Go).
// Requires AVX512F.
TEXT ·sumSqDevF64AVX512(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX
	VBROADCASTSD mean+16(FP), Z5
	VPXORQ Z0, Z0, Z0
	VPXORQ Z2, Z2, Z2
ss_pair:
	CMPQ CX, $16
	JLT  ss_one
	VCVTPS2PD (DI), Z3
	VCVTPS2PD 32(DI), Z4
	VSUBPD Z5, Z3, Z3
	VSUBPD Z5, Z4, Z4
	VMULPD Z3, Z3, Z3
	VMULPD Z4, Z4, Z4
	VADDPD Z3, Z0, Z0
	VADDPD Z4, Z2, Z2
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  ss_pair
ss_one:
	CMPQ CX, $8
	JLT  ss_reduce
	VCVTPS2PD (DI), Z3
	VSUBPD Z5, Z3, Z3
	VMULPD Z3, Z3, Z3
	VADDPD Z3, Z0, Z0
ss_reduce:
	VADDPD Z2, Z0, Z0
	REDUCEPD
	MOVSD X0, ret+24(FP)
	VZEROUPPER
	RET

// func layerNormAVX512(x, gamma, beta, out *float32, n int, m, inv float32)
//
// out[i] = (x[i]-m)·inv·gamma[i] + beta[i] for i < n, each operation rounded as
// in Go. Requires AVX512F.
TEXT ·layerNormAVX512(SB), NOSPLIT, $0-48
	MOVQ x+0(FP), SI
	MOVQ gamma+8(FP), R8
	MOVQ beta+16(FP), R9
	MOVQ out+24(FP), DI
	MOVQ n+32(FP), CX
	VBROADCASTSS m+40(FP), Z16
	VBROADCASTSS inv+44(FP), Z17
	TAILMASK
ln_loop:
	CMPQ CX, $16
	JLT  ln_tail
	VMOVUPS (SI), Z0
	VSUBPS  Z16, Z0, Z0
	VMULPS  Z17, Z0, Z0
	VMULPS  (R8), Z0, Z0
	VADDPS  (R9), Z0, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, R8
	ADDQ $64, R9
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  ln_loop
ln_tail:
	TESTQ CX, CX
	JEQ   ln_done
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS.Z (R8), K1, Z1
	VMOVUPS.Z (R9), K1, Z2
	VSUBPS  Z16, Z0, Z0
	VMULPS  Z17, Z0, Z0
	VMULPS  Z1, Z0, Z0
	VADDPS  Z2, Z0, Z0
	VMOVUPS Z0, K1, (DI)
ln_done:
	VZEROUPPER
	RET

// func rmsNormAVX512(x, gamma, out *float32, n int, inv float32)
//
// out[i] = gamma[i]·(x[i]·inv) for i < n, each operation rounded as in Go.
// Requires AVX512F.
TEXT ·rmsNormAVX512(SB), NOSPLIT, $0-36
	MOVQ x+0(FP), SI
	MOVQ gamma+8(FP), R8
	MOVQ out+16(FP), DI
	MOVQ n+24(FP), CX
	VBROADCASTSS inv+32(FP), Z17
	TAILMASK
rms_loop:
	CMPQ CX, $16
	JLT  rms_tail
	VMULPS  (SI), Z17, Z0
	VMULPS  (R8), Z0, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, R8
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  rms_loop
rms_tail:
	TESTQ CX, CX
	JEQ   rms_done
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS.Z (R8), K1, Z1
	VMULPS  Z17, Z0, Z0
	VMULPS  Z1, Z0, Z0
	VMOVUPS Z0, K1, (DI)
rms_done:
	VZEROUPPER
	RET
