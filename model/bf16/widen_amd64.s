//go:build amd64 && !purego

#include "textflag.h"

// func widenAVX512(dst *float32, src *uint16, n int)
//
// dst[i] = the float32 of bf16 src[i] for i < n (n a multiple of 32): each
// value zero-extended to 32 bits and moved to the high half, as Widen.
// Requires AVX512F.
TEXT ·widenAVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $5, CX
	JZ   done512

loop512:
	VPMOVZXWD (SI), Z0
	VPMOVZXWD 32(SI), Z1
	VPSLLD    $16, Z0, Z0
	VPSLLD    $16, Z1, Z1
	VMOVDQU32 Z0, (DI)
	VMOVDQU32 Z1, 64(DI)
	ADDQ      $64, SI
	ADDQ      $128, DI
	DECQ      CX
	JNZ       loop512
	VZEROUPPER

done512:
	RET

// func widenAVX2(dst *float32, src *uint16, n int)
//
// widenAVX512 with ymm registers (n a multiple of 16). Requires AVX2.
TEXT ·widenAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $4, CX
	JZ   done2

loop2:
	VPMOVZXWD (SI), Y0
	VPMOVZXWD 16(SI), Y1
	VPSLLD    $16, Y0, Y0
	VPSLLD    $16, Y1, Y1
	VMOVDQU   Y0, (DI)
	VMOVDQU   Y1, 32(DI)
	ADDQ      $32, SI
	ADDQ      $64, DI
	DECQ      CX
	JNZ       loop2
	VZEROUPPER

done2:
	RET
