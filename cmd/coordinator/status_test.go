package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseInterspersed(t *testing.T) {
	tests := []struct {
		args     []string
		wantPos  []string
		wantJSON bool
	}{
		{[]string{"job-1"}, []string{"job-1"}, false},
		{[]string{"--json", "job-1"}, []string{"job-1"}, true},
		{[]string{"job-1", "--json"}, []string{"job-1"}, true},
		{[]string{"a", "--json", "b"}, []string{"a", "b"}, true},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("status", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		asJSON := fs.Bool("json", false, "")
		pos, err := parseInterspersed(fs, tt.args)
		if err != nil || !slices.Equal(pos, tt.wantPos) || *asJSON != tt.wantJSON {
			t.Errorf("parseInterspersed(%q) = %q, json %v, %v", tt.args, pos, *asJSON, err)
		}
	}
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, err := parseInterspersed(fs, []string{"job", "--nope"}); err == nil {
		t.Error("unknown flag after the job: no error")
	}
}

// Without a server, status fails at once, saying why and where.
func TestStatusWithoutServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "nats://" + ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = runStatus(ctx, []string{"--nats", url, "job-x"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), url) {
		t.Fatalf("error %v, want connection refused naming %s", err, url)
	}
	if ctx.Err() != nil {
		t.Fatal("status waited for a server")
	}
}

// -h of the job commands shows a readable synopsis naming JOB, and no
// flag named after a back-quoted phrase.
func TestJobCommandsHelp(t *testing.T) {
	for name, run := range map[string]func(context.Context, []string, io.Writer) error{
		"status": runStatus, "wait": runWait, "report": runReport, "retry": runRetry,
	} {
		var help bytes.Buffer
		stderr := os.Stderr
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		os.Stderr = w
		err = run(context.Background(), []string{"-h"}, &bytes.Buffer{})
		w.Close()
		os.Stderr = stderr
		help.ReadFrom(r)
		if !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%s -h: %v", name, err)
		}
		if !strings.Contains(help.String(), "usage: coordinator "+name+" [flags]") || !strings.Contains(help.String(), "JOB") {
			t.Errorf("%s -h lacks the synopsis with JOB:\n%s", name, help.String())
		}
		if strings.Contains(help.String(), "-local coordinator") {
			t.Errorf("%s -h has a garbled --local line:\n%s", name, help.String())
		}
	}
}
