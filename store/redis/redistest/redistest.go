// Package redistest starts a real redis-server for tests: on a free port in a
// temp dir, or the one REDIS_URL names.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Server is a real redis-server on a free port in a temp dir, or the one
// REDIS_URL names (External is then true and Kill does nothing).
type Server struct {
	URL      string
	External bool
	port     int
	dir      string
	cmd      *exec.Cmd
}

// Start starts a server that lives until t ends, with an append-only
// file so that a killed and restarted server keeps what it acknowledged.
func Start(t *testing.T) *Server {
	t.Helper()
	if u := os.Getenv("REDIS_URL"); u != "" {
		return &Server{URL: u, External: true}
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server not found: install it (apt-get install redis-server) or set REDIS_URL")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r := &Server{port: port, dir: t.TempDir(), URL: fmt.Sprintf("redis://127.0.0.1:%d/0", port)}
	r.Start(t)
	t.Cleanup(r.Kill)
	return r
}

// Start starts the server again after Kill, on the same port and data.
func (r *Server) Start(t *testing.T) {
	t.Helper()
	r.cmd = exec.Command("redis-server", "--port", fmt.Sprint(r.port), "--bind", "127.0.0.1",
		"--dir", r.dir, "--save", "", "--appendonly", "yes", "--appendfsync", "always")
	out, err := r.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		closed := false
		for sc.Scan() {
			if !closed && strings.Contains(sc.Text(), "Ready to accept connections") {
				close(ready)
				closed = true
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("redis-server did not start")
	}
}

// Kill stops the server hard (SIGKILL), as a crash would.
func (r *Server) Kill() {
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
	}
}

// Pause stalls the server (SIGSTOP): connections stay open, nothing is
// answered, as with a long GC pause or a saturated host. Resume ends it.
func (r *Server) Pause() {
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Signal(syscall.SIGSTOP)
	}
}

// Resume ends a Pause (SIGCONT).
func (r *Server) Resume() {
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Signal(syscall.SIGCONT)
	}
}
