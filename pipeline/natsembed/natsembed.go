// Package natsembed runs a NATS server with JetStream inside the process:
// the queue of local mode and of tests, alone or as one node of a
// JetStream cluster (routes between servers, possibly in one process).
package natsembed

import (
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Config sets up the embedded server.
type Config struct {
	// StoreDir keeps JetStream's streams; the same folder on the next start
	// resumes the jobs in it.
	StoreDir string
	// Host and Port to listen on (127.0.0.1 and a free port when zero).
	Host string
	Port int
	// Name is the server name (blipflow-local when empty).
	Name string
	// MaxPayload caps the size of one message (0: the server's 1 MiB).
	MaxPayload int32
	// Logs enables the server's own logging on stderr.
	Logs bool
	// Username and Password, when set, are required of every client.
	Username, Password string
	// Cluster, when set, makes the server one node of a JetStream
	// cluster; every node needs its own Name and StoreDir.
	Cluster *Cluster
}

// Cluster is a node's place in a JetStream cluster.
type Cluster struct {
	// Name is the cluster's name, the same on every node.
	Name string
	// Host and Port the node listens on for routes from the other nodes
	// (127.0.0.1 and a free port when zero; give a fixed port to restart a
	// node where the others expect it).
	Host string
	Port int
	// Routes are the route URLs of the other nodes
	// (nats-route://127.0.0.1:6222); a node may list itself.
	Routes []string
}

// Server is a running embedded NATS server.
type Server struct {
	srv *server.Server
}

// Start launches the server and waits until it accepts connections.
func Start(cfg Config) (*Server, error) {
	if cfg.StoreDir == "" {
		return nil, fmt.Errorf("embedded nats: no JetStream store folder")
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	port := cfg.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if cfg.Name == "" {
		cfg.Name = "blipflow-local"
	}
	opts := &server.Options{
		ServerName:         cfg.Name,
		Host:               cfg.Host,
		Port:               port,
		JetStream:          true,
		StoreDir:           cfg.StoreDir,
		NoSigs:             true,
		NoLog:              !cfg.Logs,
		MaxPayload:         server.MAX_PAYLOAD_SIZE,
		JetStreamMaxMemory: 256 << 20,
	}
	if cfg.MaxPayload > 0 {
		opts.MaxPayload = cfg.MaxPayload
	}
	opts.Username, opts.Password = cfg.Username, cfg.Password
	if c := cfg.Cluster; c != nil {
		if err := clusterOptions(opts, *c); err != nil {
			return nil, fmt.Errorf("embedded nats %s: %w", cfg.Name, err)
		}
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats in %s: %w", cfg.StoreDir, err)
	}
	if cfg.Logs {
		srv.ConfigureLogger()
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded nats in %s: not ready after 30s", cfg.StoreDir)
	}
	return &Server{srv: srv}, nil
}

// clusterOptions sets opts up as one node of cluster c.
func clusterOptions(opts *server.Options, c Cluster) error {
	if c.Name == "" {
		return fmt.Errorf("cluster without a name")
	}
	host := c.Host
	if host == "" {
		host = "127.0.0.1"
	}
	port := c.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts.Cluster = server.ClusterOpts{Name: c.Name, Host: host, Port: port}
	for _, route := range c.Routes {
		u, err := url.Parse(route)
		if err != nil {
			return fmt.Errorf("cluster route %q: %w", route, err)
		}
		opts.Routes = append(opts.Routes, u)
	}
	return nil
}

// URL is the client URL, e.g. nats://127.0.0.1:4222.
func (s *Server) URL() string { return s.srv.ClientURL() }

// Port is the client port the server listens on.
func (s *Server) Port() int {
	if addr, ok := s.srv.Addr().(*net.TCPAddr); ok {
		return addr.Port
	}
	return 0
}

// Shutdown stops the server and waits until it is gone.
func (s *Server) Shutdown() {
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
}
