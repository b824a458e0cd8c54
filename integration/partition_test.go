package integration

import (
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// tcpProxy forwards loopback connections to a target and can cut them:
// a network partition between one process and NATS.
type tcpProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	cut    bool
}

func startProxy(t *testing.T, target string) *tcpProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.partition() })
	go p.serve()
	return p
}

func (p *tcpProxy) url() string { return "nats://" + p.ln.Addr().String() }

func (p *tcpProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		cut := p.cut
		p.mu.Unlock()
		if cut {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); up.Close() }()
		go func() { _, _ = io.Copy(c, up); c.Close() }()
	}
}

// partition drops every connection and refuses new ones until heal.
func (p *tcpProxy) partition() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *tcpProxy) heal() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// TestWorkerPartitionedPastAckWait cuts a worker off from NATS for several
// ack waits while it holds shards: another worker gets them, the cut-off
// worker finishes them too once back, and every image is still in the
// output once; the job state records the extra deliveries.
func TestWorkerPartitionedPastAckWait(t *testing.T) {
	e := newEnv(t, images, false)
	c := e.conn()
	proxy := startProxy(t, strings.TrimPrefix(e.nats.url(), "nats://"))
	victim := e.start("victim", binaries.worker, "run", "--nats", proxy.url(),
		"--model", "nop:delay=400ms", "--batch-size", "8", "--concurrency", "2",
		"--retry-delay", retryDelay, "--drain-timeout", "20s", "--name", "victim")
	e.waitFor("the victim to pull", 30*time.Second, func() bool { return getOK(victim.metrics, "/readyz") })
	e.startWorker("other", 100*time.Millisecond)
	coord := e.startCoordinator("coordinator", "partitioned")
	e.waitFor("the victim to hold shards", time.Minute, func() bool {
		return victim.metric("blipflow_worker_inflight_shards") >= 1
	})
	proxy.partition()
	time.Sleep(4 * 2 * time.Second) // four ack waits
	proxy.heal()
	if err := coord.wait(t, 3*time.Minute); err != nil {
		t.Fatalf("coordinator: %v", err)
	}
	e.verify("partitioned", nil)
	if n := e.redelivered(c, "partitioned"); n == 0 {
		t.Error("no shard records a redelivery: the partition did not outlast the ack wait of a held shard")
	}
	if !strings.Contains(victim.output(), "nats reconnected") {
		t.Error("the partitioned worker did not reconnect")
	}
}
