package queries_test

import (
	"context"
	"strings"
	"testing"

	"github.com/dnsloss/dnsloss/internal/chstore"
	"github.com/dnsloss/dnsloss/internal/chtest"
	"github.com/dnsloss/dnsloss/queries"
)

// creates counts the views a store is asked to create.
type creates struct {
	chstore.Store
	views []string
}

func (c *creates) Exec(ctx context.Context, sql string, params chstore.Params) error {
	if strings.HasPrefix(sql, "CREATE OR REPLACE VIEW ") {
		c.views = append(c.views, strings.Fields(sql)[4])
	}
	return c.Store.Exec(ctx, sql, params)
}

// TestApplyViewsOnlyWhatChanged: views already as written are left alone (creating them costs
// seconds of analysis on every command), a view whose definition differs is made again.
func TestApplyViewsOnlyWhatChanged(t *testing.T) {
	ctx := context.Background()
	s := &creates{Store: chtest.Store(t)}
	if err := queries.ApplyViews(ctx, s); err != nil { // TestMain applied them already
		t.Fatal(err)
	}
	if len(s.views) != 0 {
		t.Errorf("views created again although unchanged: %v", s.views)
	}
	if err := s.Store.Exec(ctx, "CREATE OR REPLACE VIEW dns_lookups AS SELECT 1 AS x", nil); err != nil {
		t.Fatal(err)
	}
	if err := queries.ApplyViews(ctx, s); err != nil {
		t.Fatal(err)
	}
	if strings.Join(s.views, ",") != "dns_lookups" {
		t.Errorf("views created after dns_lookups was replaced: %v, want only dns_lookups", s.views)
	}
	if _, err := s.Query(ctx, "SELECT masked_timeout FROM dns_lookups LIMIT 0", nil, "TSV"); err != nil {
		t.Errorf("dns_lookups not restored: %v", err)
	}
}
