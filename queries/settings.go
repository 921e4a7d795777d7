package queries

import (
	"fmt"
	"math"
)

// Setting is a tunable the views read from the dnsloss_settings table (the latest value set wins;
// the default applies while none is set).
type Setting struct {
	Name    string
	Default float64
	Usage   string
	Min     float64 // the smallest value that makes sense
	Integer bool    // a count, not a duration
}

// Check says what is wrong with v as a value of s, or nil.
func (s Setting) Check(v float64) error {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return fmt.Errorf("%s must be a finite number, not %v", s.Name, v)
	case v < s.Min:
		return fmt.Errorf("%s must be at least %v, not %v", s.Name, s.Min, v)
	case s.Integer && v != math.Trunc(v):
		return fmt.Errorf("%s counts steps: a whole number, not %v", s.Name, v)
	}
	return nil
}

// Settings lists every tunable the views read, in the order README documents them.
var Settings = []Setting{
	{Name: "match_window_ms", Default: 10000, Usage: "how long a query waits for its response before it counts as unanswered", Min: 1},
	{Name: "match_skew_ms", Default: 0.5, Usage: "how far a response may be stamped before its query and still match (clock skew between capture points)", Min: 0},
	{Name: "retry_grid_ms", Default: 1000, Usage: "resolver timeouts are whole multiples of this (glibc and Go: seconds)", Min: 1},
	{Name: "retry_jitter_ms", Default: 10, Usage: "how far a retry may be off the grid", Min: 0},
	{Name: "retry_late_ms", Default: 40, Usage: "how far a retry may be after the grid (timers fire late on a busy host; at least retry_jitter_ms)", Min: 0},
	{Name: "retry_max_ms", Default: 31000, Usage: "the longest wait from an attempt to the retry or next name that follows it", Min: 1},
	{Name: "lookup_next_name_ms", Default: 2, Usage: "how soon after a negative answer the stub's next name (search list) is sent", Min: 0},
	{Name: "pair_window_ms", Default: 10, Usage: "A and AAAA from two sockets within this are one lookup (Go's resolver)", Min: 0},
	{Name: "reopen_window_ms", Default: 50, Usage: "an AAAA from a new socket within this after the response to the A is one lookup (glibc's single-request-reopen)", Min: 0},
	{Name: "lookup_bucket_ms", Default: 120000, Usage: "lookups are linked within time buckets of this length; a longer lookup is cut", Min: 1000},
	{Name: "suffix_min_support", Default: 2, Usage: "search-list steps needed before a suffix is inferred from the traffic", Min: 1, Integer: true},
}

// LookupSetting returns the setting named name.
func LookupSetting(name string) (Setting, bool) {
	for _, s := range Settings {
		if s.Name == name {
			return s, true
		}
	}
	return Setting{}, false
}
