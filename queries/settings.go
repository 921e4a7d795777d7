package queries

import (
	"fmt"
	"math"
	"strconv"
)

// Setting is a tunable the views read from the dnsloss_settings table (the latest value set wins;
// the default applies while none is set).
type Setting struct {
	Name    string
	Default float64
	Usage   string
	Min     float64 // the smallest value that makes sense
	Max     float64 // the largest value that makes sense (and that the views compute with)
	Integer bool    // a count, not a duration
}

// Range is the values s takes, as README's table of settings writes them: "1 to 3600000".
func (s Setting) Range() string {
	return FormatNumber(s.Min) + " to " + FormatNumber(s.Max)
}

// FormatNumber writes a setting's value v as a user would: 5000000, not 5e+06; 1e+308 and
// 1e-320, not 309 or 320 digits.
func FormatNumber(v float64) string {
	if a := math.Abs(v); a < 1e15 && (a >= 1e-6 || a == 0) {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// Resolution is the smallest duration the views tell from 0, in milliseconds: they compute in
// nanoseconds (toInt64(value * 1000000)).
const Resolution = 1e-6

// Check says what is wrong with v as a value of s, or nil.
func (s Setting) Check(v float64) error {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return fmt.Errorf("%s must be a finite number, not %v", s.Name, v)
	case v < s.Min:
		return fmt.Errorf("%s must be at least %s, not %s (it takes %s)", s.Name, FormatNumber(s.Min), FormatNumber(v), s.Range())
	case v > s.Max:
		return fmt.Errorf("%s must be at most %s, not %s (it takes %s)", s.Name, FormatNumber(s.Max), FormatNumber(v), s.Range())
	case s.Integer && v != math.Trunc(v):
		return fmt.Errorf("%s counts steps: a whole number, not %s", s.Name, FormatNumber(v))
	case !s.Integer && v != 0 && math.Abs(v) < Resolution:
		return fmt.Errorf("%s is in milliseconds, which the views count to the nanosecond: 0 or at least %s, not %s (it takes %s)",
			s.Name, FormatNumber(Resolution), FormatNumber(v), s.Range())
	}
	return nil
}

// Durations in milliseconds.
const (
	minute = 60 * 1000
	hour   = 60 * minute
	day    = 24 * hour
)

// Settings lists every tunable the views read, in the order README documents them. The maxima
// are well past any resolver's timeouts, and keep the views' nanosecond arithmetic (Int64)
// far from overflowing: a larger value would make every answer late, or the views fail.
var Settings = []Setting{
	{Name: "match_window_ms", Default: 10000, Usage: "how long a query waits for its response before it counts as unanswered", Min: 1, Max: hour},
	{Name: "match_skew_ms", Default: 0.5, Usage: "how far a response may be stamped before its query and still match (clock skew between capture points)", Min: 0, Max: minute},
	{Name: "retry_grid_ms", Default: 1000, Usage: "resolver timeouts are whole multiples of this (glibc and Go: seconds)", Min: 1, Max: minute},
	{Name: "retry_jitter_ms", Default: 10, Usage: "how far a retry may be off the grid", Min: 0, Max: minute},
	{Name: "retry_late_ms", Default: 40, Usage: "how far a retry may be after the grid (timers fire late on a busy host; at least retry_jitter_ms)", Min: 0, Max: minute},
	{Name: "retry_max_ms", Default: 31000, Usage: "the longest wait from an attempt to the retry or next name that follows it", Min: 1, Max: hour},
	{Name: "lookup_next_name_ms", Default: 2, Usage: "how soon after a negative answer the stub's next name (search list) is sent", Min: 0, Max: minute},
	{Name: "pair_window_ms", Default: 10, Usage: "A and AAAA from two sockets within this are one lookup (Go's resolver)", Min: 0, Max: minute},
	{Name: "reopen_window_ms", Default: 50, Usage: "an AAAA from a new socket within this after the response to the A is one lookup (glibc's single-request-reopen)", Min: 0, Max: minute},
	{Name: "lookup_bucket_ms", Default: 120000, Usage: "lookups are linked within time buckets of this length; a longer lookup is cut", Min: 1000, Max: day},
	{Name: "suffix_min_support", Default: 2, Usage: "search-list steps needed before a suffix is inferred from the traffic", Min: 1, Max: 1000000, Integer: true},
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
