package queries

import (
	"regexp"
	"testing"
)

// TestViewsReadResetAsDefault: every read of dnsloss_settings in the views takes a value that is
// not finite (the row `analyzer settings reset` adds) for "not set", so the default applies.
func TestViewsReadResetAsDefault(t *testing.T) {
	names, sqls, err := Views()
	if err != nil {
		t.Fatal(err)
	}
	reads := regexp.MustCompile(`\(SELECT ([^()]*(?:\([^()]*(?:\([^()]*\))?[^()]*\))*[^()]*) FROM dnsloss_settings WHERE`)
	const want = "ifNotFinite(argMaxOrNull(value, updated_at), NULL)"
	n := 0
	for _, name := range names {
		for _, m := range reads.FindAllStringSubmatch(sqls[name], -1) {
			n++
			if m[1] != want {
				t.Errorf("%s reads a setting with %s, want %s", name, m[1], want)
			}
		}
	}
	if n < len(Settings) {
		t.Errorf("found %d reads of dnsloss_settings in the views, want at least one per setting (%d)", n, len(Settings))
	}
}
