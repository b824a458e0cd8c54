package integration

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"blipflow/pipeline"
	"blipflow/pipeline/coordinator"
	"blipflow/pipeline/jobstate"
	"blipflow/pipeline/natsembed"
	"blipflow/pipeline/node"
	"blipflow/pipeline/queue"
	"blipflow/pipeline/synth"
	"blipflow/storage"
)

// natsCluster is a JetStream cluster of embedded servers in the test
// process, routed to each other on loopback ports.
type natsCluster struct {
	t     *testing.T
	mu    sync.Mutex
	nodes []*clusterNode
}

// clusterNode is one server of a natsCluster.
type clusterNode struct {
	name      string
	dir       string
	port      int
	routePort int
	srv       *natsembed.Server
}

// startCluster starts n routed servers and waits until JetStream answers.
func startCluster(t *testing.T, n int) *natsCluster {
	c := &natsCluster{t: t}
	var routes []string
	for i := range n {
		nd := &clusterNode{name: fmt.Sprintf("n%d", i+1), dir: t.TempDir(), port: freePort(t), routePort: freePort(t)}
		c.nodes = append(c.nodes, nd)
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", nd.routePort))
	}
	for _, nd := range c.nodes {
		srv, err := natsembed.Start(natsembed.Config{
			StoreDir: nd.dir, Port: nd.port, Name: nd.name,
			Cluster: &natsembed.Cluster{Name: "blipflow-test", Port: nd.routePort, Routes: routes},
		})
		if err != nil {
			t.Fatal(err)
		}
		nd.srv = srv
	}
	t.Cleanup(c.stopAll)
	nc, err := nats.Connect(c.urls())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := js.AccountInfo(ctx)
		cancel()
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("JetStream cluster not ready: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// urls is the comma-separated client URL list of every node.
func (c *natsCluster) urls() string {
	var urls []string
	for _, nd := range c.nodes {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", nd.port))
	}
	return strings.Join(urls, ",")
}

// kill shuts the named node down.
func (c *natsCluster) kill(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, nd := range c.nodes {
		if nd.name == name && nd.srv != nil {
			nd.srv.Shutdown()
			nd.srv = nil
			return
		}
	}
	c.t.Fatalf("no running cluster node %q", name)
}

func (c *natsCluster) stopAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, nd := range c.nodes {
		if nd.srv != nil {
			nd.srv.Shutdown()
			nd.srv = nil
		}
	}
}

// streamLeader returns the name of the node leading a stream.
func streamLeader(t *testing.T, js jetstream.JetStream, stream string) (leader string, replicas int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	if info.Cluster == nil {
		t.Fatalf("stream %s has no cluster info", stream)
	}
	return info.Cluster.Leader, info.Config.Replicas
}

// clusterEnv is an env whose processes use a 3-node cluster.
func clusterEnv(t *testing.T) (*env, *natsCluster, *node.Conn) {
	e := newEnv(t, images, false)
	e.nats.stop() // the single server newEnv started is not used
	cl := startCluster(t, 3)
	e.natsURLs = cl.urls()
	conn, err := node.Dial(e.ctx, e.natsURL(), "integration-test", queue.Config{Replicas: 3}, jobstate.Config{},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.NC.Close)
	return e, cl, conn
}

// TestClusterLosesStreamLeader runs a job on a 3-node JetStream cluster
// with replicated streams and job state, kills the node leading the shard
// stream mid-job, and checks the job finishes with every image once.
func TestClusterLosesStreamLeader(t *testing.T) {
	e, cl, c := clusterEnv(t)
	e.startWorker("worker-1", 300*time.Millisecond)
	e.startWorker("worker-2", 300*time.Millisecond)
	coord := e.start("coordinator", binaries.coordinator, "run",
		"--input", e.input, "--output", e.output, "--task", "both", "--prompt", "a photo of",
		"--shard-size", "20", "--job", "cluster", "--progress=false", "--replicas", "3")
	e.waitFor("some shards done", time.Minute, func() bool { return e.doneShards(c, "cluster") >= 2 })

	leader, replicas := streamLeader(t, c.JS, queue.DefaultStream)
	if replicas != 3 {
		t.Errorf("shard stream has %d replicas, want 3", replicas)
	}
	kvLeader, kvReplicas := streamLeader(t, c.JS, "KV_"+jobstate.DefaultBucket)
	if kvReplicas != 3 {
		t.Errorf("job state bucket has %d replicas, want 3", kvReplicas)
	}
	t.Logf("killing %s (leads the shard stream; %s leads the job state)", leader, kvLeader)
	cl.kill(leader)

	if err := coord.wait(t, 3*time.Minute); err != nil {
		t.Fatalf("coordinator: %v", err)
	}
	m := e.verify("cluster", nil)
	if m.Done != m.Shards || m.Failed != 0 {
		t.Errorf("manifest: %d of %d shards done, %d failed", m.Done, m.Shards, m.Failed)
	}
	if now, _ := streamLeader(t, c.JS, queue.DefaultStream); now == leader || now == "" {
		t.Errorf("shard stream leader after the kill: %q", now)
	}
	// Workers started without --replicas did not shrink the streams.
	if _, replicas := streamLeader(t, c.JS, queue.DefaultStream); replicas != 3 {
		t.Errorf("shard stream has %d replicas after the job, want 3", replicas)
	}
}

// TestClusterLeaderElectionMidPublish kills the shard stream's leader
// while the coordinator publishes thousands of shards: the publishes ride
// out the election and every shard is in the stream exactly once.
func TestClusterLeaderElectionMidPublish(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test; skipped with -short")
	}
	cl := startCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := node.Dial(ctx, cl.urls(), "integration-test", queue.Config{Replicas: 3}, jobstate.Config{}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer c.NC.Close()
	const shards = 4000
	coord := newListingCoordinator(t, c, shards, log)
	leader, _ := streamLeader(t, c.JS, queue.DefaultStream)

	killed := make(chan struct{})
	go func() {
		defer close(killed)
		for ctx.Err() == nil {
			if n := streamMsgs(c.JS, queue.DefaultStream); n >= shards/10 {
				cl.kill(leader)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	spec, err := coord.Submit(ctx, listingRequest(t))
	<-killed
	if err != nil {
		t.Fatalf("submit across a leader election: %v", err)
	}
	if spec.Shards != shards || !spec.Published {
		t.Errorf("spec: %d shards, published %v", spec.Shards, spec.Published)
	}
	if n := streamMsgs(c.JS, queue.DefaultStream); n != shards {
		t.Errorf("shard stream holds %d messages, want %d (each shard once)", n, shards)
	}
	if now, _ := streamLeader(t, c.JS, queue.DefaultStream); now == leader {
		t.Errorf("stream leader %s did not change", leader)
	}
}

// newListingCoordinator returns a coordinator whose input synth://N lists
// n images that exist only as names, and whose synth:// outputs are kept
// in memory.
func newListingCoordinator(t *testing.T, c *node.Conn, n int, log *slog.Logger) *coordinator.Coordinator {
	t.Helper()
	coord, err := coordinator.New(coordinator.Config{
		JS: c.JS, Queue: c.Queue, Jobs: c.Jobs, Log: log,
		OpenStore: func(_ context.Context, location string) (storage.Store, error) { return synth.OpenStore(location) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return coord
}

// listingRequest is a job of one image per shard over synth://4000.
func listingRequest(t *testing.T) coordinator.Request {
	task, err := pipeline.ParseTask(pipeline.TaskCaption, "")
	if err != nil {
		t.Fatal(err)
	}
	return coordinator.Request{ID: "midpublish", Input: "synth://4000", Output: "synth://out", Task: task, ShardSize: 1}
}

// streamMsgs returns the message count of a stream (-1 on error).
func streamMsgs(js jetstream.JetStream, stream string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return -1
	}
	info, err := s.Info(ctx)
	if err != nil {
		return -1
	}
	return int(info.State.Msgs)
}
