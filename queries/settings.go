package queries

// Setting is a tunable the views read from the dnsloss_settings table (the latest value set wins;
// the default applies while none is set).
type Setting struct {
	Name    string
	Default float64
	Usage   string
}

// Settings lists every tunable the views read, in the order README documents them.
var Settings = []Setting{
	{"match_window_ms", 10000, "how long a query waits for its response before it counts as unanswered"},
	{"match_skew_ms", 0.5, "how far a response may be stamped before its query and still match (clock skew between capture points)"},
	{"retry_grid_ms", 1000, "resolver timeouts are whole multiples of this (glibc and Go: seconds)"},
	{"retry_jitter_ms", 10, "how far a retry may be off the grid"},
	{"retry_max_ms", 31000, "the longest wait from an attempt to the retry or next name that follows it"},
	{"lookup_next_name_ms", 2, "how soon after a negative answer the stub's next name (search list) is sent"},
	{"pair_window_ms", 10, "A and AAAA from two sockets within this are one lookup (Go's resolver)"},
	{"lookup_bucket_ms", 120000, "lookups are linked within time buckets of this length; a longer lookup is cut"},
	{"suffix_min_support", 2, "search-list steps needed before a suffix is inferred from the traffic"},
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
