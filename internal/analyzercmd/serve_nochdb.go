//go:build nochdb

package analyzercmd

import (
	"errors"

	"github.com/dnsloss/dnsloss/internal/chhttp"
	"github.com/dnsloss/dnsloss/internal/chstore"
)

func openServed(dir string) (chstore.Store, chhttp.Engine, error) {
	return nil, nil, errors.New("this analyzer was built with -tags nochdb and has no embedded engine to serve")
}
