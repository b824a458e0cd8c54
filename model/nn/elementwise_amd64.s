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

// BCASTQ puts the float64 with bits imm in every lane of z.
#define BCASTQ(imm, z) MOVQ imm, AX; VPBROADCASTQ AX, z

// EXPCONSTS loads the float64 constants of EXPPD into Z14-Z31.
#define EXPCONSTS \
	BCASTQ($0x3e21eed8eff8d898, Z14); \
	BCASTQ($0x3e5ae64567f544e4, Z15); \
	BCASTQ($0x3e927e4fb7789f5c, Z16); \
	BCASTQ($0x3ec71de3a556c734, Z17); \
	BCASTQ($0x3efa01a01a01a01a, Z18); \
	BCASTQ($0x3f2a01a01a01a01a, Z19); \
	BCASTQ($0x3f56c16c16c16c17, Z20); \
	BCASTQ($0x3f81111111111111, Z21); \
	BCASTQ($0x3fa5555555555555, Z22); \
	BCASTQ($0x3fc5555555555555, Z23); \
	BCASTQ($0x3fe0000000000000, Z24); \
	BCASTQ($0x3ff0000000000000, Z25); \
	BCASTQ($0x4000000000000000, Z26); \
	BCASTQ($0x3ff71547652b82fe, Z27); \
	BCASTQ($0x3fe62e42fee00000, Z28); \
	BCASTQ($0x3dea39ef35793c76, Z29); \
	BCASTQ($0x4086300000000000, Z30); \
	BCASTQ($0xc087500000000000, Z31)

// EXPPD replaces the 8 float64 lanes of x with exp(x), using k and p as
// temporaries: x clamped to [-746, 710] (a NaN stays; beyond the range exp
// is 0 or +Inf all the same), x = k·ln2 + r with k = round(x·log2e), exp(r)
// by its Taylor polynomial to r¹²/12! (|r| <= ln2/2, truncation error
// below 2e-16 relative), then VSCALEFPD multiplies by 2^k, giving +Inf,
// subnormals and 0 at the ends. Accurate to a few float64 ulp, so its
// rounding to float32 nearly always equals math.Exp's.
#define EXPPD(x, k, p) \
	VMINPD  x, Z30, x; \
	VMAXPD  x, Z31, x; \
	VMULPD  Z27, x, k; \
	VRNDSCALEPD $0, k, k; \
	VFNMADD231PD Z28, k, x; \
	VFNMADD231PD Z29, k, x; \
	VMOVAPD Z14, p; \
	VFMADD213PD Z15, x, p; \
	VFMADD213PD Z16, x, p; \
	VFMADD213PD Z17, x, p; \
	VFMADD213PD Z18, x, p; \
	VFMADD213PD Z19, x, p; \
	VFMADD213PD Z20, x, p; \
	VFMADD213PD Z21, x, p; \
	VFMADD213PD Z22, x, p; \
	VFMADD213PD Z23, x, p; \
	VFMADD213PD Z24, x, p; \
	VFMADD213PD Z25, x, p; \
	VFMADD213PD Z25, x, p; \
	VSCALEFPD k, p, x

// TOF64 splits the 16 float32 lanes of zs (ys its low half) into float64
// lo (lanes 0-7) and hi (lanes 8-15); yhi is the low half of hi.
#define TOF64(ys, zs, lo, hi, yhi) \
	VCVTPS2PD ys, lo; \
	VEXTRACTF64X4 $1, zs, yhi; \
	VCVTPS2PD yhi, hi

// TOF32 joins float64 lo and hi, rounded to float32, into the 16 lanes of lo.
#define TOF32(lo, hi, ylo, yhi) \
	VCVTPD2PS lo, ylo; \
	VCVTPD2PS hi, yhi; \
	VINSERTF64X4 $1, yhi, lo, lo

// GELUTANH replaces Z0 (v) with 0.5·v·(1 + float32(tanh(float64(u)))),
// u = c·(v + 0.044715·v·v·v) in float32 as in Go, tanh(u) = 1 - 2/(exp(2u)
// + 1) in float64 (absolute error near 1e-16, far below the float32 ulp of
// the 1 it is added to). Uses Z1-Z5 and the constants in Z10-Z31.
#define GELUTANH \
	VMULPS  Z10, Z0, Z1; \
	VMULPS  Z0, Z1, Z1; \
	VMULPS  Z0, Z1, Z1; \
	VADDPS  Z1, Z0, Z1; \
	VMULPS  Z11, Z1, Z1; \
	TOF64(Y1, Z1, Z2, Z3, Y3); \
	VADDPD  Z2, Z2, Z2; \
	VADDPD  Z3, Z3, Z3; \
	EXPPD(Z2, Z4, Z5); \
	EXPPD(Z3, Z4, Z5); \
	VADDPD  Z25, Z2, Z2; \
	VADDPD  Z25, Z3, Z3; \
	VDIVPD  Z2, Z26, Z2; \
	VDIVPD  Z3, Z26, Z3; \
	VSUBPD  Z2, Z25, Z2; \
	VSUBPD  Z3, Z25, Z3; \
	TOF32(Z2, Z3, Y2, Y3); \
	VADDPS  Z13, Z2, Z2; \
	VMULPS  Z12, Z0, Z0; \
	VMULPS  Z2, Z0, Z0

// func geluTanhAVX512(x *float32, n int)
//
// x[i] = 0.5·x[i]·(1 + tanh(√(2/π)·(x[i] + 0.044715·x[i]³))) for i < n, in
// place. Requires AVX512F.
TEXT ·geluTanhAVX512(SB), NOSPLIT, $0-16
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX
	EXPCONSTS
	BCAST($0x3d372713, Z10) // 0.044715
	BCAST($0x3f4c422a, Z11) // √(2/π)
	BCAST($0x3f000000, Z12) // 0.5
	BCAST($0x3f800000, Z13) // 1
	TAILMASK
gt_loop:
	CMPQ CX, $16
	JLT  gt_tail
	VMOVUPS (DI), Z0
	GELUTANH
	VMOVUPS Z0, (DI)
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  gt_loop
gt_tail:
	TESTQ CX, CX
	JEQ   gt_done
	VMOVUPS.Z (DI), K1, Z0
	GELUTANH
	VMOVUPS Z0, K1, (DI)
gt_done:
	VZEROUPPER
	RET

// QUICKGELU replaces Z0 (v) with v / (1 + float32(exp(float64(-1.702·v)))),
// the exponential in float64 by EXPPD. Uses Z1-Z5 and the constants in
// Z10, Z13 and Z14-Z31.
#define QUICKGELU \
	VMULPS  Z10, Z0, Z1; \
	TOF64(Y1, Z1, Z2, Z3, Y3); \
	EXPPD(Z2, Z4, Z5); \
	EXPPD(Z3, Z4, Z5); \
	TOF32(Z2, Z3, Y2, Y3); \
	VADDPS  Z13, Z2, Z2; \
	VDIVPS  Z2, Z0, Z0

// func quickGeluAVX512(x *float32, n int)
//
// x[i] = x[i]·σ(1.702·x[i]) for i < n, in place. Requires AVX512F.
TEXT ·quickGeluAVX512(SB), NOSPLIT, $0-16
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX
	EXPCONSTS
	BCAST($0xbfd9db23, Z10) // -1.702
	BCAST($0x3f800000, Z13) // 1
	TAILMASK
qg_loop:
	CMPQ CX, $16
	JLT  qg_tail
	VMOVUPS (DI), Z0
	QUICKGELU
	VMOVUPS Z0, (DI)
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  qg_loop
qg_tail:
	TESTQ CX, CX
	JEQ   qg_done
	VMOVUPS.Z (DI), K1, Z0
	QUICKGELU
	VMOVUPS Z0, K1, (DI)
qg_done:
	VZEROUPPER
	RET
