//go:build !nochdb

package analyzercmd

import (
	"context"

	"github.com/dnsloss/dnsloss/internal/chembed"
	"github.com/dnsloss/dnsloss/internal/chhttp"
	"github.com/dnsloss/dnsloss/internal/chstore"
)

// servedEngine adapts the embedded engine to what chhttp serves.
type servedEngine struct{ s *chembed.Store }

func (e servedEngine) Session(ctx context.Context, fn func(chhttp.Conn) error) error {
	return e.s.Session(ctx, func(c *chembed.Conn) error { return fn(c) })
}

func openServed(dir string) (chstore.Store, chhttp.Engine, error) {
	s, err := chembed.Open(dir)
	if err != nil {
		return nil, nil, err
	}
	return s, servedEngine{s}, nil
}
