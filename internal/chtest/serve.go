//go:build !nochdb

package chtest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/dnsloss/dnsloss/internal/chembed"
	"github.com/dnsloss/dnsloss/internal/chhttp"
)

// Engine adapts the embedded engine to what chhttp serves.
type Engine struct{ S *chembed.Store }

// Session implements chhttp.Engine.
func (e Engine) Session(ctx context.Context, fn func(chhttp.Conn) error) error {
	return e.S.Session(ctx, func(c *chembed.Conn) error { return fn(c) })
}

// Serve serves the shared engine over ClickHouse's HTTP interface on a free loopback port until
// the test ends, and returns its address once /ping answers. An empty password means no
// authentication.
func Serve(t testing.TB, user, password string) string {
	t.Helper()
	h, err := chhttp.New(context.Background(), chhttp.Config{Engine: Engine{Store(t)}, User: user, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Shutdown(context.Background())
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("server stopped: %v", err)
		}
	})
	addr := ln.Addr().String()
	WaitPing(t, addr)
	return addr
}

// WaitPing polls http://addr/ping until it answers "Ok.", for at most 30 s.
func WaitPing(t testing.TB, addr string) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get("http://" + addr + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server at %s did not answer /ping within 30 s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
