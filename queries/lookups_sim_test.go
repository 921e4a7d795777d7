package queries_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/dnsloss/dnsloss/internal/agreement"
	"github.com/dnsloss/dnsloss/internal/chtest"
	"github.com/dnsloss/dnsloss/internal/simcap"
)

// TestLookupsAgainstSimulation runs simulated glibc and Go clients at several loss rates and
// asks that failed lookups and masked timeouts be found with precision and recall >= 0.99.
func TestLookupsAgainstSimulation(t *testing.T) {
	for _, profile := range []simcap.Profile{simcap.Glibc, simcap.Go} {
		for _, loss := range []float64{0.05, 0.2, 0.4} {
			t.Run(fmt.Sprintf("%s/loss=%.2f", profile, loss), func(t *testing.T) {
				cfg := simcap.Defaults()
				cfg.Profile, cfg.QLoss, cfg.RLoss, cfg.Seed = profile, loss, loss, uint64(loss*100)+7
				res, err := simcap.Run(cfg)
				if err != nil {
					t.Fatal(err)
				}
				s := chtest.Fresh(t, "search_domains")
				chtest.Insert(t, s, res.Messages)
				out := chtest.Query(t, s, `SELECT host, toUnixTimestamp64Nano(start_ts), outcome != 'answered', masked_timeout
					FROM dns_lookups`, nil)
				type key struct {
					host  string
					start int64
				}
				view := map[key][2]bool{}
				for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
					f := strings.Split(line, "\t")
					start, _ := strconv.ParseInt(f[1], 10, 64)
					view[key{f[0], start}] = [2]bool{f[2] == "1", f[3] == "1"}
				}
				var failed, masked agreement.Count
				nFailed, nMasked := 0, 0
				for _, lk := range res.Lookups {
					v, found := view[key{lk.Host, lk.Start}]
					failed.Add(found && v[0], lk.Failed)
					masked.Add(found && v[1], lk.MaskedWire)
					delete(view, key{lk.Host, lk.Start})
					if lk.Failed {
						nFailed++
					}
					if lk.MaskedWire {
						nMasked++
					}
				}
				for k, v := range view { // lookups the view made up
					failed.Add(v[0], false)
					masked.Add(v[1], false)
					_ = k
				}
				t.Logf("%d lookups, %d failed, %d masked; view has %d extra lookups; failed %+v, masked %+v",
					len(res.Lookups), nFailed, nMasked, len(view), failed, masked)
				if nFailed == 0 {
					t.Fatalf("the simulation made no failed lookups: the test proves nothing")
				}
				for name, sc := range map[string]agreement.Count{"failed": failed, "masked_timeout": masked} {
					if sc.Precision() < 0.99 || sc.Recall() < 0.99 {
						t.Errorf("%s: precision %.3f recall %.3f, want both >= 0.99 (%+v)", name, sc.Precision(), sc.Recall(), sc)
					}
				}
			})
		}
	}
}
