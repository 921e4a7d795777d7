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
				checkSimulation(t, cfg, 0.99)
			})
		}
	}
}

// TestLookupsSideBySide: Kubernetes pods (glibc, ndots 5, four search suffixes, two
// nameservers) looking popular names up several times a second at 40 % loss, so that a dozen
// lookups of one name, each up to a minute and a half long, run side by side from one client:
// a name's next name must follow the answer that came last before it and the wait that fits
// the retry grid best, the retry spacing must be read past other lookups' attempts, and a
// lookup must stay whole however many attempts of other lookups of its name come in between.
// At two lookups a second per pod this is twice as dense as dnssim's Kubernetes profile (which
// scripts/dnssim-eval.sh holds to 0.99); the linking scores about 0.988 here, and 0.745 without
// these four rules (the view of 80023bd), so the bar is 0.98.
func TestLookupsSideBySide(t *testing.T) {
	cfg := simcap.Defaults()
	cfg.Hosts, cfg.Lookups, cfg.Rate, cfg.NDots = 2, 400, 2, 5
	cfg.Search = []string{"default.svc.cluster.local", "svc.cluster.local", "cluster.local", "in.corp.example"}
	cfg.QLoss, cfg.RLoss, cfg.Seed = 0.4, 0.4, 11
	checkSimulation(t, cfg, 0.98)
}

// checkSimulation simulates cfg, stores its messages and scores dns_lookups against the truth:
// precision and recall of failed lookups and of masked timeouts must be at least minScore.
func checkSimulation(t *testing.T, cfg simcap.Config, minScore float64) {
	t.Helper()
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
	var wrong []simcap.Lookup
	for _, lk := range res.Lookups {
		v, found := view[key{lk.Host, lk.Start}]
		failed.Add(found && v[0], lk.Failed)
		masked.Add(found && v[1], lk.MaskedWire)
		if !found || v[0] != lk.Failed || v[1] != lk.MaskedWire {
			wrong = append(wrong, lk)
		}
		delete(view, key{lk.Host, lk.Start})
		if lk.Failed {
			nFailed++
		}
		if lk.MaskedWire {
			nMasked++
		}
	}
	for _, v := range view { // lookups the view made up
		failed.Add(v[0], false)
		masked.Add(v[1], false)
	}
	t.Logf("%d lookups, %d failed, %d masked; view has %d extra lookups; failed %+v, masked %+v",
		len(res.Lookups), nFailed, nMasked, len(view), failed, masked)
	if nFailed == 0 {
		t.Fatalf("the simulation made no failed lookups: the test proves nothing")
	}
	for name, sc := range map[string]agreement.Count{"failed": failed, "masked_timeout": masked} {
		if sc.Precision() < minScore || sc.Recall() < minScore {
			t.Errorf("%s: precision %.3f recall %.3f, want both >= %.2f (%+v)", name, sc.Precision(), sc.Recall(), minScore, sc)
		}
	}
	if t.Failed() { // what went wrong: the first truth lookups the view disagrees with, beside the view's attempts
		for _, lk := range wrong[:min(len(wrong), 3)] {
			t.Logf("truth: %s %s start %d failed %v masked %v tried %+v", lk.Host, lk.Name, lk.Start, lk.Failed, lk.MaskedWire, lk.Tried)
			t.Log(chtest.Query(t, s, `SELECT toUnixTimestamp64Nano(ts) - {start:Int64}, qname, qtype, id, client_port, result, link,
					toUnixTimestamp64Nano(lookup_ts) - {start:Int64}
				FROM dns_lookup_attempts WHERE host = {host:String} AND base = {name:String}
					AND toUnixTimestamp64Nano(ts) BETWEEN {start:Int64} AND {end:Int64} ORDER BY ts`,
				map[string]string{"host": lk.Host, "name": lk.Name, "start": strconv.FormatInt(lk.Start, 10), "end": strconv.FormatInt(lk.End, 10)}))
		}
	}
}
