//go:build nochdb

package analyzercmd

import (
	"errors"

	"github.com/dnsloss/dnsloss/internal/chstore"
)

func openEmbedded(dir string) (chstore.Store, error) {
	return nil, errors.New("this analyzer was built with -tags nochdb and has no embedded engine; use --clickhouse URL")
}
