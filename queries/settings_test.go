package queries

import (
	"fmt"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestSettingsCatalogue: every setting the views read is in Settings with the default the SQL
// applies, and every entry of Settings is read by some view (read from the SQL files themselves).
func TestSettingsCatalogue(t *testing.T) {
	names, sqls, err := Views()
	if err != nil {
		t.Fatal(err)
	}
	// ifNull((SELECT argMaxOrNull(value, updated_at) FROM dnsloss_settings WHERE name = 'n'), d)
	// or (SELECT ifNull(argMaxOrNull(value, updated_at), d) FROM dnsloss_settings WHERE name = 'n')
	outer := regexp.MustCompile(`dnsloss_settings WHERE name = '([a-z_]+)'\), ([0-9.]+)\)`)
	inner := regexp.MustCompile(`ifNull\(argMaxOrNull\(value, updated_at\), ([0-9.]+)\) FROM dnsloss_settings WHERE name = '([a-z_]+)'`)
	any := regexp.MustCompile(`dnsloss_settings WHERE name = '([a-z_]+)'`)
	read := map[string]bool{}
	for _, n := range names {
		sql := sqls[n]
		defaults := map[string]string{}
		for _, m := range outer.FindAllStringSubmatch(sql, -1) {
			defaults[m[1]] = m[2]
		}
		for _, m := range inner.FindAllStringSubmatch(sql, -1) {
			defaults[m[2]] = m[1]
		}
		for _, m := range any.FindAllStringSubmatch(sql, -1) {
			name := m[1]
			read[name] = true
			s, ok := LookupSetting(name)
			if !ok {
				t.Errorf("%s reads setting %q, which Settings does not list", n, name)
				continue
			}
			d, ok := defaults[name]
			if !ok {
				t.Errorf("%s: cannot find the default of %q in the SQL", n, name)
				continue
			}
			if v, err := strconv.ParseFloat(d, 64); err != nil || v != s.Default {
				t.Errorf("%s: %s defaults to %s in SQL, %v in Settings", n, name, d, s.Default)
			}
		}
	}
	for _, s := range Settings {
		if !read[s.Name] {
			t.Errorf("Settings lists %q, which no view reads", s.Name)
		}
	}
}

// TestSettingsInReadme: README's table of settings has every setting with its default and range.
func TestSettingsInReadme(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range Settings {
		row := fmt.Sprintf("| `%s` | %s | %s |", s.Name, strconv.FormatFloat(s.Default, 'f', -1, 64), s.Range())
		if !strings.Contains(string(readme), row) {
			t.Errorf("README lacks the row %q", row)
		}
	}
}

// TestSettingCheck: values a view cannot use are refused; every default is accepted.
func TestSettingCheck(t *testing.T) {
	for _, s := range Settings {
		if err := s.Check(s.Default); err != nil {
			t.Errorf("default of %s refused: %v", s.Name, err)
		}
		if err := s.Check(s.Max); err != nil || !(s.Max > s.Default) {
			t.Errorf("maximum of %s: %v (Check says %v), want a value above the default %v that Check accepts", s.Name, s.Max, err, s.Default)
		}
	}
	window, _ := LookupSetting("match_window_ms")
	support, _ := LookupSetting("suffix_min_support")
	bucket, _ := LookupSetting("lookup_bucket_ms")
	skew, _ := LookupSetting("match_skew_ms")
	for _, tc := range []struct {
		s    Setting
		v    float64
		want string
	}{
		{window, math.NaN(), "finite"},
		{window, math.Inf(1), "finite"},
		{window, -5, "at least 1"},
		{window, 0, "at least 1"},
		{window, 1e308, "match_window_ms must be at most 3600000, not 1e+308 (it takes 1 to 3600000)"},
		{window, 1e13, "at most 3600000"},
		{window, 3600001, "at most 3600000, not 3600001"},
		{bucket, 1e15, "lookup_bucket_ms must be at most 86400000"},
		{support, 1e19, "at most 1000000"},
		{support, 1.5, "whole number"},
		{support, 0, "at least 1"},
		// Printed short, not with 320 digits; and below a nanosecond is refused where 0 is allowed.
		{window, 1e-320, "match_window_ms must be at least 1, not 1e-320 (it takes 1 to 3600000)"},
		{skew, 1e-320, "0 or at least 0.000001, not 1e-320"},
		{skew, 5e-7, "not 5e-07"},
	} {
		err := tc.s.Check(tc.v)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s = %v: got %v, want an error saying %q", tc.s.Name, tc.v, err, tc.want)
		}
	}
	if err := support.Check(3); err != nil {
		t.Errorf("suffix_min_support = 3 refused: %v", err)
	}
	for _, v := range []float64{0, 0.000001, 0.0001} {
		if err := skew.Check(v); err != nil {
			t.Errorf("match_skew_ms = %v refused: %v", v, err)
		}
	}
}
