package queries

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dnsloss/dnsloss/internal/chstore"
	"github.com/dnsloss/dnsloss/schema"
)

// Linked names where a reader finds the transactions and lookups of one time range: Memory
// tables holding what the views dns_transactions, dns_lookup_attempts and dns_lookups give for
// it, or those views themselves when the store would not take the tables (a read-only user).
//
// Two costs make the tables worth it. The engine analyzes the lookup views' query for seconds
// whatever the data (about 7 CPU-s), so a reader that asks several questions about lookups (a
// report) pays that once. And no time condition reaches through the views to dns_messages (the
// linking works on whole groups and windows), so a question about the last hour asked of the
// views links the whole store; Link reads only the messages the range needs.
type Linked struct {
	// Transactions has dns_transactions' columns: at least the attempts sent in the range, and
	// those around it that the linking read (a reader keeps to the range by query_ts).
	Transactions string
	Attempts     string // dns_lookup_attempts' columns: the attempts of the lookups begun in the range
	Lookups      string // dns_lookups' columns: the lookups begun in the range
	// Scratch is true when the names are tables of this Linked, dropped by Close.
	Scratch bool
	store   chstore.Store
	tables  []string
	name    string // of the tables, less their suffix
}

// inUse holds the names (less the suffix) of the scratch tables of this process's Links that are
// not closed: on a store this process holds alone, every other scratch table is a leftover.
var inUse sync.Map

// scratchPrefix starts the name of every table Link makes, followed by the Unix time it was made
// at: leftovers of a process that was killed before Close are dropped by a later Link, on a
// store this process holds alone (the embedded engine) all of them, on a server once they are a
// day old (the name says when: the engine's metadata_modification_time is not kept for every
// table), as other processes' reports may be using the younger ones.
const scratchPrefix = "dnsloss_scratch_"

// mayNotCreate matches the errors of a user who may not create tables (READONLY, ACCESS_DENIED).
var mayNotCreate = regexp.MustCompile(`\b(READONLY|ACCESS_DENIED)\b|Code: (164|497)\b`)

var scratchName = regexp.MustCompile(`^` + scratchPrefix + `([0-9]{10,})_[0-9a-f]{16}_[tsal]$`)

// Link links the query attempts sent and the lookups begun in [since, until) (a zero time leaves
// that side open) into scratch tables: the transactions of the attempts in the range, and the
// lookups that began in it with their attempts. It reads the messages from the lookup bucket
// (setting lookup_bucket_ms) before since's to two buckets after until's, plus the match window:
// the lookups that began in the range are then linked exactly as the views link them (they are
// traced per bucket with the bucket before), and every attempt in it has its response. Search
// suffixes inferred from the traffic are inferred from the hour before and after those messages
// too, not from the whole store as the view does: where the two differ (a suffix the store shows
// only in steps far from the range), the lookups differ (configured suffixes,
// `--search-domains`, apply as ever). When the store refuses the tables, it returns the views
// instead (Scratch false), which give the same rows once the reader applies since and until.
func Link(ctx context.Context, store chstore.Store, since, until time.Time) (l *Linked, err error) {
	l = TheViews()
	l.store = store
	dropStale(ctx, store)
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("cannot name a scratch table: %w", err)
	}
	name := scratchPrefix + strconv.FormatInt(time.Now().Unix(), 10) + "_" + hex.EncodeToString(b[:])
	inUse.Store(name, true)
	defer func() {
		if l == nil || !l.Scratch {
			inUse.Delete(name)
		}
	}()
	steps, params, err := linkSteps(ctx, store, name, since, until)
	if err != nil {
		return nil, err
	}
	if ok, err := viewsCurrent(ctx, store); err != nil || !ok {
		return l, err // the store's views are another version's (or a cluster's): ask them
	}
	for i, st := range steps {
		table := name + "_" + st.suffix
		l.tables = append(l.tables, table)
		// The table takes the view's columns, so that the engine analyzes the query once (CREATE
		// TABLE ... AS SELECT analyzes it for the columns, then again to fill the table).
		err := store.Exec(ctx, "CREATE TABLE "+table+" AS "+st.view+" ENGINE = Memory", nil)
		if err != nil && i == 0 && mayNotCreate.MatchString(err.Error()) {
			dropTables(store, l.tables...)
			return l, nil // no tables here: the views give the same rows
		}
		if err == nil {
			err = store.Exec(ctx, "INSERT INTO "+table+" "+st.query, params)
		}
		if err != nil {
			dropTables(store, l.tables...)
			return nil, fmt.Errorf("cannot link the lookups: %w", err)
		}
	}
	l.Transactions, l.Attempts, l.Lookups, l.Scratch, l.name = name+"_t", name+"_a", name+"_l", true, name
	return l, nil
}

// TheViews names the views themselves, for a reader that links nothing.
func TheViews() *Linked {
	return &Linked{Transactions: "dns_transactions", Attempts: "dns_lookup_attempts", Lookups: "dns_lookups"}
}

// Close drops the scratch tables.
func (l *Linked) Close() {
	if l != nil && l.Scratch {
		dropTables(l.store, l.tables...)
		l.Scratch = false
		inUse.Delete(l.name)
	}
}

// linkFiles are the views whose queries Link runs.
var linkFiles = []string{"views/10_dns_transactions.sql", "views/15_dns_search_suffixes.sql",
	"views/16_dns_lookup_attempts.sql", "views/18_dns_lookups.sql"}

// viewsCurrent says whether the store's views that Link stands in for are this program's: their
// comments hold the hashes ApplyViews left. The scratch tables take the views' columns and are
// filled by this program's queries; a server whose views are older (not yet `schema apply`d) or
// made on a cluster (no comments) is asked through its views.
func viewsCurrent(ctx context.Context, store chstore.Store) (bool, error) {
	have, err := viewHashes(ctx, store)
	if err != nil {
		return false, err
	}
	_, sqls, err := Views()
	if err != nil {
		return false, err
	}
	for _, f := range linkFiles {
		for _, st := range schema.Statements(sqls[f]) {
			m := viewName.FindStringSubmatch(st)
			if m == nil || have[m[1]] != statementHash(st) {
				return false, nil
			}
		}
	}
	return true, nil
}

// linkStep fills scratch table name_suffix, made like view, with query.
type linkStep struct{ suffix, view, query string }

// linkSteps returns the queries that fill the scratch tables of name, in order, and their
// parameters.
func linkSteps(ctx context.Context, store chstore.Store, name string, since, until time.Time) ([]linkStep, chstore.Params, error) {
	p := RangeParams(since, until)
	messages, suffixMessages := "dns_messages", "dns_messages"
	if !since.IsZero() || !until.IsZero() {
		set, err := effectiveSettings(ctx, store)
		if err != nil {
			return nil, nil, err
		}
		bucket := int64(set["lookup_bucket_ms"] * 1e6)
		lo, hi := time.Unix(0, 0), openEnd
		if !since.IsZero() {
			lo = time.Unix(0, (floorDiv(since.UnixNano(), bucket)-1)*bucket)
		}
		if !until.IsZero() {
			pad := time.Duration((set["match_window_ms"]+set["match_skew_ms"])*1e6) + time.Second
			hi = time.Unix(0, (floorDiv(until.UnixNano()-1, bucket)+2)*bucket).Add(pad)
		}
		if hi.Before(until) { // an until near the end of DateTime64(9)
			hi = openEnd
		}
		p["lo"], p["hi"] = FormatTS(storable(lo)), FormatTS(storable(hi))
		messages = "(SELECT *, qname_key FROM dns_messages WHERE ts >= {lo:DateTime64(9, 'UTC')} AND ts < {hi:DateTime64(9, 'UTC')})"
		// Search suffixes are inferred from an hour more on each side: a short period alone
		// may hold too few search steps to show a suffix that the traffic around it shows.
		p["slo"], p["shi"] = FormatTS(storable(lo.Add(-suffixContext))), FormatTS(storable(hi.Add(suffixContext)))
		suffixMessages = "(SELECT *, qname_key FROM dns_messages WHERE ts >= {slo:DateTime64(9, 'UTC')} AND ts < {shi:DateTime64(9, 'UTC')})"
	}
	tx, err := viewQuery("views/10_dns_transactions.sql", sub{"FROM dns_messages\n", "FROM " + messages + "\n", 2})
	if err != nil {
		return nil, nil, err
	}
	suffixes, err := viewQuery("views/15_dns_search_suffixes.sql", sub{"FROM dns_messages\n                    WHERE NOT has_default", "FROM " + suffixMessages + "\n                    WHERE NOT has_default", 1})
	if err != nil {
		return nil, nil, err
	}
	attempts, err := viewQuery("views/16_dns_lookup_attempts.sql",
		sub{"FROM dns_transactions AS t", "FROM " + name + "_t AS t", 1},
		sub{"FROM dns_search_suffixes GROUP BY host", "FROM " + name + "_s GROUP BY host", 1})
	if err != nil {
		return nil, nil, err
	}
	lookups, err := viewQuery("views/18_dns_lookups.sql", sub{"FROM dns_lookup_attempts", "FROM " + name + "_a", 1})
	if err != nil {
		return nil, nil, err
	}
	return []linkStep{
		{"t", "dns_transactions", tx},
		{"s", "dns_search_suffixes", suffixes},
		{"a", "dns_lookup_attempts", "SELECT * FROM (" + attempts + ") WHERE lookup_ts >= {since:DateTime64(9, 'UTC')} AND lookup_ts < {until:DateTime64(9, 'UTC')}"},
		{"l", "dns_lookups", lookups},
	}, p, nil
}

// suffixContext is how much traffic before and after the linked messages Link infers search
// suffixes from.
const suffixContext = time.Hour

// openEnd stands for an open end of a range: DateTime64(9) ends in 2262.
var openEnd = time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)

// storable returns t, or the nearest time the store's DateTime64(9) columns hold.
func storable(t time.Time) time.Time {
	switch {
	case t.Before(time.Unix(0, 0)):
		return time.Unix(0, 0)
	case t.After(openEnd):
		return openEnd
	}
	return t
}

// FormatTS writes t as a DateTime64(9, 'UTC') query parameter.
func FormatTS(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000000000") }

// RangeParams are the parameters since and until of a query over [since, until); a zero time
// leaves that side open.
func RangeParams(since, until time.Time) chstore.Params {
	p := chstore.Params{"since": FormatTS(time.Unix(0, 0)), "until": FormatTS(openEnd)}
	if !since.IsZero() {
		p["since"] = FormatTS(since)
	}
	if !until.IsZero() {
		p["until"] = FormatTS(until)
	}
	return p
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// effectiveSettings returns the value the views use for every setting.
func effectiveSettings(ctx context.Context, store chstore.Store) (map[string]float64, error) {
	out, err := store.Query(ctx, "SELECT name, ifNotFinite(argMaxOrNull(value, updated_at), NULL) AS v FROM dnsloss_settings GROUP BY name HAVING v IS NOT NULL", nil, "TSV")
	if err != nil {
		return nil, fmt.Errorf("cannot read the settings: %w", err)
	}
	set := map[string]float64{}
	for _, s := range Settings {
		set[s.Name] = s.Default
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Split(line, "\t"); len(f) == 2 {
			if v, err := strconv.ParseFloat(f[1], 64); err == nil {
				set[f[0]] = v
			}
		}
	}
	return set, nil
}

type sub struct {
	old, new string
	n        int // how often old must occur
}

var viewHead = regexp.MustCompile(`(?is)^.*?CREATE\s+OR\s+REPLACE\s+VIEW\s+[A-Za-z0-9_]+\s+AS\s+`)

// viewQuery returns the query of the view that file creates, with the substitutions made; each
// old string must occur as often as it says (a view rewritten so that it no longer does is an
// error, not a silently different query).
func viewQuery(file string, subs ...sub) (string, error) {
	_, sqls, err := Views()
	if err != nil {
		return "", err
	}
	st := schema.Statements(sqls[file])
	if len(st) != 1 {
		return "", fmt.Errorf("queries/%s holds %d statements, want 1", file, len(st))
	}
	view := strings.TrimSpace(st[0])
	q := viewHead.ReplaceAllString(view, "")
	if q == view {
		return "", fmt.Errorf("queries/%s: no CREATE OR REPLACE VIEW", file)
	}
	for _, s := range subs {
		if n := strings.Count(q, s.old); n != s.n {
			return "", fmt.Errorf("queries/%s: cannot read its query over scratch tables (%q occurs %d times, want %d)", file, s.old, n, s.n)
		}
		q = strings.ReplaceAll(q, s.old, s.new)
	}
	return q, nil
}

// dropTables drops tables of ours, also when the caller's context is done.
func dropTables(store chstore.Store, names ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, n := range names {
		_ = store.Exec(ctx, "DROP TABLE IF EXISTS "+n, nil)
	}
}

// dropStale drops scratch tables left by a killed process (a Memory table on a server holds its
// rows until dropped). On a store this process holds alone (the embedded engine), every one
// that is not this process's; on a server, those a day old by the time in their name: no report
// takes that long, and another report's tables in use are younger.
func dropStale(ctx context.Context, store chstore.Store) {
	exclusive := chstore.IsExclusive(store)
	out, err := store.Query(ctx, "SELECT name FROM system.tables WHERE database = currentDatabase() AND startsWith(name, {prefix:String})",
		chstore.Params{"prefix": scratchPrefix}, "TSV")
	if err != nil {
		return
	}
	dayAgo := time.Now().Add(-24 * time.Hour).Unix()
	for _, n := range strings.Fields(string(out)) {
		if exclusive {
			if scratchName.MatchString(n) && !isInUse(n) {
				dropTables(store, n)
			}
			continue
		}
		if m := scratchName.FindStringSubmatch(n); m != nil {
			if made, err := strconv.ParseInt(m[1], 10, 64); err == nil && made < dayAgo {
				dropTables(store, n)
			}
		}
	}
}

// isInUse says whether the scratch table n (a name scratchName matches) is one of an open Link's.
func isInUse(n string) bool {
	_, ok := inUse.Load(n[:len(n)-len("_t")])
	return ok
}
