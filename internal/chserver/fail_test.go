package chserver

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
)

// TestFailKeepsTheURLOut: an HTTP error carries the request URL, which holds every query
// parameter; the error a user reads names the server and what went wrong, and says when the
// query was interrupted (Ctrl-C) rather than quoting the URL.
func TestFailKeepsTheURLOut(t *testing.T) {
	s := &Store{target: "127.0.0.1:8123"}
	ue := &url.Error{Op: "Post", URL: "http://127.0.0.1:8123/?param_name=www.example.com", Err: errors.New("connection refused")}
	if got := s.fail(context.Background(), ue).Error(); got != "ClickHouse at 127.0.0.1:8123: connection refused" {
		t.Errorf("got %q", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.fail(ctx, &url.Error{Op: "Post", URL: ue.URL, Err: context.Canceled})
	if got := err.Error(); !strings.Contains(got, "interrupted") || strings.Contains(got, "param_") || !errors.Is(err, context.Canceled) {
		t.Errorf("got %q, want it to say interrupted, without the URL, wrapping context.Canceled", got)
	}
}
