package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"blipflow/internal/s3test"
	"blipflow/pipeline/synth"
	"blipflow/storage"
)

// paxRecord formats one PAX extended header record ("LEN key=value\n").
func paxRecord(key, value string) string {
	rest := " " + key + "=" + value + "\n"
	n := len(rest) + 1
	for len(fmt.Sprint(n))+len(rest) != n {
		n++
	}
	return fmt.Sprint(n) + rest
}

// rawTarHeader builds a ustar header block, for the members archive/tar
// will not write (PAX headers of GNU sparse files).
func rawTarHeader(name string, typeflag byte, size int) []byte {
	b := make([]byte, 512)
	copy(b, name)
	copy(b[100:], "0000644\x00")
	copy(b[108:], "0000000\x00")
	copy(b[116:], "0000000\x00")
	copy(b[124:], fmt.Sprintf("%011o\x00", size))
	copy(b[136:], "00000000000\x00")
	copy(b[148:], "        ")
	b[156] = typeflag
	copy(b[257:], "ustar\x0000")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

func padBlock(b []byte) []byte {
	return append(b, make([]byte, (512-len(b)%512)%512)...)
}

// sparseMember is a PAX (GNU sparse 1.0) member named name whose
// logical size is 2 GiB but which holds one byte: a few KB of tar.
func sparseMember(name string) []byte {
	dir, base := filepath.Split(name)
	records := paxRecord("GNU.sparse.major", "1") + paxRecord("GNU.sparse.minor", "0") +
		paxRecord("GNU.sparse.name", name) + paxRecord("GNU.sparse.realsize", fmt.Sprint(int64(2)<<30))
	out := rawTarHeader("PaxHeaders/"+base, 'x', len(records))
	out = append(out, padBlock([]byte(records))...)
	sparseMap := make([]byte, 512)
	copy(sparseMap, fmt.Sprintf("1\n%d\n1\n", int64(2)<<30-1))
	data := append(sparseMap, 'x')
	out = append(out, rawTarHeader(dir+"GNUSparseFile.0/"+base, '0', len(data))...)
	return append(out, padBlock(data)...)
}

// tarMembers writes regular members with archive/tar; the result has no
// end marker, so that more members (or nothing: a cut tar) can follow.
func tarMembers(t *testing.T, members ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i < len(members); i += 2 {
		if err := tw.WriteHeader(&tar.Header{Name: members[i], Mode: 0o644, Size: int64(len(members[i+1]))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(members[i+1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestWebDatasetHostileTars runs a job over two tars in S3: one with a
// PAX-sparse member claiming 2 GiB among good samples, one cut off in the
// middle of a member. The crafted member and the cut one are error rows
// naming why, every other sample gets its caption, the job counts its
// images, and the process's peak RSS stays far below the crafted size.
func TestWebDatasetHostileTars(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test; skipped with -short")
	}
	s3 := s3test.Start(t)
	ctx := context.Background()
	bucket, err := storage.Open(ctx, s3.URL(""), storage.ConfigFromEnv())
	if err != nil {
		t.Fatal(err)
	}
	png := func(i int) string {
		data, err := synth.PNG(i, 16, 16)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	sparse := tarMembers(t, "s/000.png", png(0), "s/000.txt", "zero")
	sparse = append(sparse, sparseMember("s/001.png")...)
	sparse = append(sparse, tarMembers(t, "s/001.txt", "one", "s/002.png", png(2), "s/003.png", png(3))...)
	sparse = append(sparse, make([]byte, 1024)...) // end marker
	cut := tarMembers(t, "c/000.png", png(10), "c/001.png", png(11), "c/002.png", png(12))
	cut = cut[:len(cut)-400] // inside c/002.png's bytes
	for name, data := range map[string][]byte{"hostile/000.tar": sparse, "hostile/001.tar": cut} {
		if err := bucket.Write(ctx, name, data); err != nil {
			t.Fatal(err)
		}
	}

	runCtx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(runCtx, binaries.coordinator, "run", "--local", "--model", "nop", "--task", "caption",
		"--progress=false", "--metrics-addr", "", "--log-format", "json",
		"--input", s3.URL("hostile/{000..001}.tar"), "--output", s3.URL("out"), "--job", "hostile",
		"--store-dir", filepath.Join(t.TempDir(), "nats"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("coordinator: %v\n%s", err, out)
	}
	peakMB := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss / 1024
	t.Logf("peak RSS of the local run: %d MB", peakMB)
	if peakMB > 400 {
		t.Errorf("peak RSS %d MB reading a tar with a 2 GiB sparse member; want under 400 MB", peakMB)
	}

	m, rows := jobRows(t, s3.URL("out"), "hostile")
	if m.Images != 7 || m.Rows != 7 || m.ErrorRows != 2 {
		t.Errorf("manifest: %d images, %d rows, %d error rows; want 7, 7, 2", m.Images, m.Rows, m.ErrorRows)
	}
	for key, want := range map[string]string{
		"s/001": "over the 20000000-byte member limit",
		"c/002": "truncated",
	} {
		if r := rows[key]; !strings.Contains(r.Error, want) {
			t.Errorf("%s: error %q, want it to say %q", key, r.Error, want)
		}
	}
	for _, key := range []string{"s/000", "s/002", "s/003", "c/000", "c/001"} {
		if r, ok := rows[key]; !ok || r.Error != "" || len(r.Captions) != 1 {
			t.Errorf("%s: row %+v, want a caption", key, r)
		}
	}
	if got := rows["s/000"].Extra["txt"]; got != "zero" {
		t.Errorf("s/000 txt %q", got)
	}
}
