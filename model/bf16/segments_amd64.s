//go:build amd64 && !purego

#include "textflag.h"

// func dotSegmentsAVX512(out *float32, stride int, x *float32, w *uint16, n, seg int, scale float32)
//
// For s < n: out[s*stride] = scale * sum over i < seg of x[s*seg+i] *
// widen(w[s*seg+i]), seg a multiple of 16 and n > 0. Requires AVX512F.
TEXT ·dotSegmentsAVX512(SB), NOSPLIT, $0-52
	MOVQ   out+0(FP), DI
	MOVQ   stride+8(FP), R8
	SHLQ   $2, R8
	MOVQ   x+16(FP), SI
	MOVQ   w+24(FP), DX
	MOVQ   n+32(FP), CX
	MOVQ   seg+40(FP), R9
	SHRQ   $4, R9
	VMOVSS scale+48(FP), X15

dseg:
	VPXORD Z0, Z0, Z0
	MOVQ   R9, R10

dvec:
	VPMOVZXWD   (DX), Z1
	VPSLLD      $16, Z1, Z1
	VFMADD231PS (SI), Z1, Z0
	ADDQ        $64, SI
	ADDQ        $32, DX
	DECQ        R10
	JNZ         dvec
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS      Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS      X1, X0, X0
	VMOVHLPS    X0, X0, X1
	VADDPS      X1, X0, X0
	VMOVSHDUP   X0, X1
	VADDSS      X1, X0, X0
	VMULSS      X15, X0, X0
	VMOVSS      X0, (DI)
	ADDQ        R8, DI
	DECQ        CX
	JNZ         dseg
	VZEROUPPER
	RET

// func axpySegmentsAVX512(y *float32, a *float32, stride int, w *uint16, n, seg int)
//
// For s < n, i < seg: y[s*seg+i] += a[s*stride] * widen(w[s*seg+i]), seg a
// multiple of 16 and n > 0. Requires AVX512F.
TEXT ·axpySegmentsAVX512(SB), NOSPLIT, $0-48
	MOVQ y+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ stride+16(FP), R8
	SHLQ $2, R8
	MOVQ w+24(FP), DX
	MOVQ n+32(FP), CX
	MOVQ seg+40(FP), R9
	SHRQ $4, R9

aseg:
	VBROADCASTSS (SI), Z2
	MOVQ         R9, R10

avec:
	VPMOVZXWD   (DX), Z1
	VPSLLD      $16, Z1, Z1
	VFMADD213PS (DI), Z2, Z1
	VMOVUPS     Z1, (DI)
	ADDQ        $64, DI
	ADDQ        $32, DX
	DECQ        R10
	JNZ         avec
	ADDQ        R8, SI
	DECQ        CX
	JNZ         aseg
	VZEROUPPER
	RET
