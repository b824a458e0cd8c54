package natsembed

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestStartRestart(t *testing.T) {
	dir := t.TempDir()
	srv, err := Start(Config{StoreDir: dir, MaxPayload: 4096})
	if err != nil {
		t.Fatal(err)
	}
	port := srv.Port()
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	if nc.MaxPayload() != 4096 {
		t.Errorf("max payload %d, want 4096", nc.MaxPayload())
	}
	nc.Close()
	srv.Shutdown()
	again, err := Start(Config{StoreDir: dir, Port: port})
	if err != nil {
		t.Fatalf("restart on port %d: %v", port, err)
	}
	defer again.Shutdown()
	if again.Port() != port {
		t.Errorf("restarted on port %d, want %d", again.Port(), port)
	}
	if _, err := Start(Config{}); err == nil {
		t.Error("Start without a store folder: no error")
	}
}

// TestCluster starts three routed nodes and creates a stream replicated
// on all of them.
func TestCluster(t *testing.T) {
	var ports, routePorts []int
	var routes []string
	for range 3 {
		ports, routePorts = append(ports, freePort(t)), append(routePorts, freePort(t))
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", routePorts[len(routePorts)-1]))
	}
	var urls []string
	for i := range 3 {
		srv, err := Start(Config{StoreDir: t.TempDir(), Port: ports[i], Name: fmt.Sprintf("n%d", i),
			Cluster: &Cluster{Name: "test", Port: routePorts[i], Routes: routes}})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Shutdown()
		urls = append(urls, srv.URL())
	}
	if _, err := Start(Config{StoreDir: t.TempDir(), Cluster: &Cluster{}}); err == nil {
		t.Error("a cluster without a name: no error")
	}
	nc, err := nats.Connect(strings.Join(urls, ","))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "R3", Subjects: []string{"r3.>"}, Replicas: 3})
		if err == nil {
			info, err := s.Info(ctx)
			cancel()
			if err != nil || info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
				t.Fatalf("stream cluster info %+v, %v; want a leader and two replicas", info.Cluster, err)
			}
			return
		}
		cancel()
		if time.Now().After(deadline) {
			t.Fatalf("replicated stream: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
