package redact

import (
	"errors"
	"io/fs"
	"log/slog"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	cases := map[string]string{
		"nats://alice:s3cret@127.0.0.1:4222":                   "nats://alice:xxxxx@127.0.0.1:4222",
		"nats://TOKEN123@nats:4222":                            "nats://xxxxx@nats:4222",
		"http://u:p%40ss@minio:9000/bucket":                    "http://u:xxxxx@minio:9000/bucket",
		"dial nats://a:b@h:1, nats://c:d@h:2 failed":           "dial nats://a:xxxxx@h:1, nats://c:xxxxx@h:2 failed",
		"s3://bucket/key@2x.png":                               "s3://bucket/key@2x.png",
		"http://host/path?mail=a@b.c":                          "http://host/path?mail=a@b.c",
		"no url here, user@example.com":                        "no url here, user@example.com",
		`{"url":"https://k:v@example.com/x.jpg","other":"ok"}`: `{"url":"https://k:xxxxx@example.com/x.jpg","other":"ok"}`,
	}
	for in, want := range cases {
		if got := URL(in); got != want {
			t.Errorf("URL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestErrKeepsChain(t *testing.T) {
	err := Err(&fs.PathError{Op: "open", Path: "http://u:pw@h/x", Err: fs.ErrNotExist})
	if err.Error() != "open http://u:xxxxx@h/x: file does not exist" {
		t.Fatalf("message %q", err.Error())
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("errors.Is lost the cause")
	}
	if Err(nil) != nil || Error(nil) != "" {
		t.Fatal("nil not kept")
	}
}

func TestHandlerMasksRecords(t *testing.T) {
	var buf strings.Builder
	log := slog.New(Handler(slog.NewJSONHandler(&buf, nil))).With("nats", "nats://u:pw1@h:1")
	log.Warn("dial nats://u:pw2@h:1", "err", errors.New("connect http://k:pw3@s3:9000: refused"),
		slog.Group("g", "url", "https://x:pw4@y/z"))
	out := buf.String()
	for _, secret := range []string{"pw1", "pw2", "pw3", "pw4"} {
		if strings.Contains(out, secret) {
			t.Errorf("log leaks %s: %s", secret, out)
		}
	}
	if !strings.Contains(out, "u:xxxxx@h:1") {
		t.Errorf("log lost the redacted url: %s", out)
	}
}
