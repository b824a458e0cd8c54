package natsembed

import (
	"testing"

	"github.com/nats-io/nats.go"
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
