package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"blipflow/internal/s3test"
	"blipflow/pipeline/natsembed"
)

// TestSecretsNeverPrinted runs a job against a NATS server that requires
// a password, with the password in --nats, and greps everything the
// binaries print (worker, coordinator run and status, an S3 endpoint with
// credentials that cannot be reached), their metrics and the job state
// for the secrets. A wrong password fails at once as an authorization
// error instead of being retried.
func TestSecretsNeverPrinted(t *testing.T) {
	const (
		natsPass = "NatsPw-7f3a91"
		s3Pass   = "S3EndpointPw-c04d2e"
		wrong    = "WrongPw-55e1b0"
	)
	e := newEnv(t, 12, false)
	port := freePort(t)
	srv, err := natsembed.Start(natsembed.Config{StoreDir: t.TempDir(), Port: port, Username: "blip", Password: natsPass})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	url := fmt.Sprintf("nats://blip:%s@127.0.0.1:%d", natsPass, port)

	var printed strings.Builder
	run := func(timeout time.Duration, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		bin := binaries.coordinator
		if args[0] == "worker" {
			bin = binaries.worker
		}
		out, err := exec.CommandContext(ctx, bin, args[1:]...).CombinedOutput()
		printed.Write(out)
		return string(out), err
	}

	// A worker with the password, serving metrics; the job runs on it.
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	worker := exec.Command(binaries.worker, "run", "--nats", url, "--model", "nop", "--metrics-addr", metricsAddr,
		"--log-level", "debug", "--name", "secret-worker")
	var workerOut strings.Builder
	worker.Stdout, worker.Stderr = &workerOut, &workerOut
	if err := worker.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = worker.Process.Kill(); _ = worker.Wait() }()
	if out, err := run(2*time.Minute, "coordinator", "run", "--nats", url, "--input", e.input, "--output", e.output,
		"--job", "secret", "--progress=false", "--metrics-addr", "", "--log-level", "debug"); err != nil {
		t.Fatalf("coordinator run: %v\n%s", err, out)
	}
	if out, err := run(time.Minute, "coordinator", "status", "secret", "--nats", url, "--metrics-addr", ""); err != nil {
		t.Fatalf("coordinator status: %v\n%s", err, out)
	}
	for _, path := range []string{"/metrics", "/readyz", "/healthz"} {
		if resp, err := http.Get("http://" + metricsAddr + path); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			printed.Write(body)
		}
	}

	// The job state as stored.
	c := e.connURL(url)
	spec, err := c.Jobs.Spec(e.ctx, "secret")
	if err != nil {
		t.Fatal(err)
	}
	states, err := c.Jobs.Shards(e.ctx, "secret")
	if err != nil {
		t.Fatal(err)
	}
	state, _ := json.Marshal(map[string]any{"spec": spec, "states": states})
	printed.Write(state)

	// A wrong password: an authorization error, at once.
	start := time.Now()
	out, err := run(time.Minute, "worker", "run", "--nats", strings.Replace(url, natsPass, wrong, 1), "--model", "nop", "--metrics-addr", "")
	took := time.Since(start)
	if err == nil || !strings.Contains(strings.ToLower(out), "authorization") {
		t.Errorf("worker with a wrong password: %v, output lacks an authorization error:\n%s", err, out)
	}
	t.Logf("wrong NATS password: worker exited after %s", took.Round(10*time.Millisecond))
	if took > 20*time.Second {
		t.Errorf("wrong password took %s to fail; it must not be retried", took)
	}

	// An S3 endpoint with credentials in it that cannot be reached.
	out, err = run(2*time.Minute, "coordinator", "run", "--local", "--model", "nop", "--input", "s3://"+e.s3.Bucket+"/in",
		"--output", t.TempDir(), "--s3-endpoint", fmt.Sprintf("http://key:%s@127.0.0.1:%d", s3Pass, freePort(t)),
		"--metrics-addr", "", "--progress=false")
	if err == nil || !strings.Contains(out, "unreachable") {
		t.Errorf("unreachable S3: %v\n%s", err, out)
	}

	_ = worker.Process.Kill()
	_ = worker.Wait()
	printed.WriteString(workerOut.String())
	all := printed.String()
	if !strings.Contains(all, "blip:xxxxx@127.0.0.1") {
		t.Errorf("the redacted NATS URL is not in the output (was it logged at all?)")
	}
	for _, secret := range []string{natsPass, s3Pass, wrong, s3test.SecretKey} {
		if i := strings.Index(all, secret); i >= 0 {
			t.Errorf("secret %q printed: ...%s...", secret, all[max(i-200, 0):min(i+50, len(all))])
		}
	}
}
