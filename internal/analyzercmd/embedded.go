//go:build !nochdb

package analyzercmd

import (
	"github.com/dnsloss/dnsloss/internal/chembed"
	"github.com/dnsloss/dnsloss/internal/chstore"
)

func openEmbedded(dir string) (chstore.Store, error) { return chembed.Open(dir) }
