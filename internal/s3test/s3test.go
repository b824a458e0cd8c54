// Package s3test runs a real S3-compatible server (versitygw over a temporary
// folder) on a loopback port for tests. Install the server once with
// .ci/install-versitygw.sh; without it tests skip, unless BLIPFLOW_REQUIRE_S3=1
// (as in CI) makes its absence a failure.
package s3test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"blipflow/storage"
)

// Settings of the test server.
const (
	AccessKey     = "blipflowtest"
	SecretKey     = "blipflowtestsecret"
	Region        = "us-east-1"
	DefaultBucket = "blipflow-test"
	binaryName    = "versitygw"
	startTimeout  = 20 * time.Second
	stopTimeout   = 5 * time.Second
)

// Server is a running versitygw gateway serving buckets from a temp folder.
type Server struct {
	// Endpoint is the server's URL, http://127.0.0.1:PORT.
	Endpoint string
	// Bucket is the bucket Start created.
	Bucket string
	// Dir is the folder the gateway serves; each bucket is a subfolder.
	Dir string

	t      testing.TB
	binary string
	addr   string // 127.0.0.1:PORT
	log    *lockedBuffer

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd exits
}

// Start finds the versitygw binary, runs it on a free loopback port over a
// temp folder, waits until it answers, creates Bucket and stops it in
// t.Cleanup. It also sets (with t.Setenv, so the test must not be parallel)
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
// BLIPFLOW_S3_ENDPOINT and BLIPFLOW_S3_PATH_STYLE so that
// storage.ConfigFromEnv and the AWS credential chain reach this server.
func Start(t testing.TB) *Server {
	t.Helper()
	binary, err := findBinary()
	if err != nil {
		if os.Getenv("BLIPFLOW_REQUIRE_S3") == "1" {
			t.Fatalf("s3test: %v (BLIPFLOW_REQUIRE_S3=1 requires it; run .ci/install-versitygw.sh)", err)
		}
		t.Skipf("s3test: %v; run .ci/install-versitygw.sh to enable the S3 tests", err)
	}
	addr, err := freeLoopbackAddr()
	if err != nil {
		t.Fatalf("s3test: %v", err)
	}
	s := &Server{
		Endpoint: "http://" + addr,
		Bucket:   DefaultBucket,
		Dir:      t.TempDir(),
		t:        t,
		binary:   binary,
		addr:     addr,
		log:      &lockedBuffer{},
	}
	t.Cleanup(s.Stop)
	if err := s.start(); err != nil {
		t.Fatalf("s3test: %v", err)
	}
	s.CreateBucket(s.Bucket)

	t.Setenv("AWS_ACCESS_KEY_ID", AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", SecretKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", Region)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("BLIPFLOW_S3_ENDPOINT", s.Endpoint)
	t.Setenv("BLIPFLOW_S3_PATH_STYLE", "true")
	return s
}

// Config returns storage settings that reach this server with static
// credentials, independent of the environment. Retries are few and short so
// that tests of an unreachable server finish quickly.
func (s *Server) Config() storage.Config {
	return storage.Config{
		Endpoint:        s.Endpoint,
		Region:          Region,
		PathStyle:       true,
		AccessKeyID:     AccessKey,
		SecretAccessKey: SecretKey,
		MaxRetries:      2,
		MaxBackoff:      200 * time.Millisecond,
	}
}

// URL returns the s3:// location of prefix in Bucket.
func (s *Server) URL(prefix string) string {
	return "s3://" + s.Bucket + "/" + strings.TrimPrefix(prefix, "/")
}

// Open opens a store at prefix in Bucket using Config.
func (s *Server) Open(prefix string) storage.Store {
	s.t.Helper()
	st, err := storage.Open(context.Background(), s.URL(prefix), s.Config())
	if err != nil {
		s.t.Fatalf("s3test: open %s: %v", s.URL(prefix), err)
	}
	return st
}

// CreateBucket creates another bucket on the server.
func (s *Server) CreateBucket(name string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	client := s3.New(s3.Options{
		BaseEndpoint: aws.String(s.Endpoint),
		Region:       Region,
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
	})
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		s.t.Fatalf("s3test: create bucket %s at %s: %v\nserver log:\n%s", name, s.Endpoint, err, s.log.tail())
	}
}

// Stop stops the server; requests then fail with connection refused until
// Restart. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// Restart starts a stopped server again on the same address and folder, so
// buckets and objects written before Stop are still there.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.t.Fatalf("s3test: restart: %v", err)
	}
}

// start launches the gateway and waits until it answers HTTP.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var lastErr error
	// The port may still be held briefly after a stop; retry the launch.
	for attempt := 0; attempt < 3; attempt++ {
		if lastErr = s.launch(); lastErr == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return lastErr
}

// launch runs the binary once and waits for it to answer; s.mu is held.
func (s *Server) launch() error {
	cmd := exec.Command(s.binary,
		"--access", AccessKey,
		"--secret", SecretKey,
		"--region", Region,
		"--port", s.addr,
		"--quiet",
		"posix", s.Dir)
	cmd.Stdout = s.log
	cmd.Stderr = s.log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.binary, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	if err := waitReady(s.Endpoint, done); err != nil {
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s on %s: %w\nserver log:\n%s", s.binary, s.addr, err, s.log.tail())
	}
	s.cmd, s.done = cmd, done
	return nil
}

// waitReady polls endpoint until it answers any HTTP response, the process
// exits, or startTimeout passes.
func waitReady(endpoint string, exited <-chan struct{}) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	for {
		resp, err := client.Get(endpoint)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-exited:
			return errors.New("exited before answering")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not answering after %v: %w", startTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// findBinary looks for versitygw on PATH, then in $GOBIN or $GOPATH/bin.
func findBinary() (string, error) {
	if p, err := exec.LookPath(binaryName); err == nil {
		return p, nil
	}
	var dirs []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			gopath = strings.TrimSpace(string(out))
		}
	}
	if gopath == "" {
		if home, err := os.UserHomeDir(); err == nil {
			gopath = filepath.Join(home, "go")
		}
	}
	for _, p := range filepath.SplitList(gopath) {
		dirs = append(dirs, filepath.Join(p, "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, binaryName)
		if info, err := os.Stat(p); err == nil && info.Mode().IsRegular() && info.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH or in %s", binaryName, strings.Join(dirs, ", "))
}

// freeLoopbackAddr asks the kernel for a free port on 127.0.0.1.
func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free loopback port: %w", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return "", fmt.Errorf("find a free loopback port: %w", err)
	}
	return addr, nil
}

// lockedBuffer collects the server's output from its two pipes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// tail returns the last few KiB of output.
func (b *lockedBuffer) tail() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	const max = 4 << 10
	data := b.buf.Bytes()
	if len(data) > max {
		data = data[len(data)-max:]
	}
	return string(data)
}
