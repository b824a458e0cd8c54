package main

import (
	"bytes"
	"os"
	"testing"
)

// TestVDPBF16PS checks the encoder against GNU as's encodings of
// "vdpbf16ps %zmm{src2}, %zmm{src1}, %zmm{dst}".
func TestVDPBF16PS(t *testing.T) {
	cases := []struct {
		dst, src1, src2 int
		want            []byte
	}{
		{0, 16, 20, []byte{0x62, 0xb2, 0x7e, 0x40, 0x52, 0xc4}},
		{15, 19, 23, []byte{0x62, 0x32, 0x66, 0x40, 0x52, 0xff}},
		{9, 17, 21, []byte{0x62, 0x32, 0x76, 0x40, 0x52, 0xcd}},
	}
	for _, c := range cases {
		if got := vdpbf16ps(c.dst, c.src1, c.src2); !bytes.Equal(got, c.want) {
			t.Errorf("vdpbf16ps(%d, %d, %d) = % x, want % x", c.dst, c.src1, c.src2, got, c.want)
		}
	}
}

// TestGeneratedFileIsCurrent fails when kernel_amd64.s differs from what the
// generator writes (run go generate ./model/bf16).
func TestGeneratedFileIsCurrent(t *testing.T) {
	var b bytes.Buffer
	generate(&b)
	have, err := os.ReadFile("../../kernel_amd64.s")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have, b.Bytes()) {
		t.Error("model/bf16/kernel_amd64.s is stale: run go generate ./model/bf16")
	}
}
