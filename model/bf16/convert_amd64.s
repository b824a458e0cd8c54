//go:build amd64 && !purego

#include "textflag.h"

// func roundAVX512(dst *uint16, src *float32, n int)
//
// dst[i] = bf16 of src[i] for i < n (n a multiple of 16), rounded to
// nearest even, NaNs kept NaN (made quiet): the same as Round. Requires
// AVX512F.
TEXT ·roundAVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $4, CX
	JZ   done
	MOVL $1, AX
	VPBROADCASTD AX, Z30
	MOVL $0x7fff, AX
	VPBROADCASTD AX, Z31
	MOVL $0x7fffffff, AX
	VPBROADCASTD AX, Z29
	MOVL $0x7f800000, AX
	VPBROADCASTD AX, Z28
	MOVL $0x40, AX
	VPBROADCASTD AX, Z27

loop:
	VMOVDQU32 (SI), Z0
	VPSRLD    $16, Z0, Z1          // high half
	VPANDD    Z30, Z1, Z2          // its lowest bit: ties go to even
	VPADDD    Z31, Z0, Z3
	VPADDD    Z2, Z3, Z3
	VPSRLD    $16, Z3, Z3          // rounded
	VPANDD    Z29, Z0, Z4          // |x|
	VPCMPUD   $6, Z28, Z4, K1      // NaN: |x| > +Inf
	VPORD     Z27, Z1, K1, Z3      // NaN lanes: high half, quiet bit set
	VPMOVDW   Z3, (DI)
	ADDQ      $64, SI
	ADDQ      $32, DI
	DECQ      CX
	JNZ       loop
	VZEROUPPER

done:
	RET
