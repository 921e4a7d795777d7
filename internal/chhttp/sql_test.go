package chhttp

import "testing"

func TestAnalyze(t *testing.T) {
	tests := []struct {
		name, sql              string
		kind, format           string
		data                   string // text from dataAt; "-" when dataAt < 0
		settings, multi, files bool
	}{
		{"select", "SELECT 1", "SELECT", "", "-", false, false, false},
		{"select format", "select 1 FORMAT JSONEachRow", "SELECT", "JSONEachRow", "-", false, false, false},
		{"format in string", "SELECT 'FORMAT TSV'", "SELECT", "", "-", false, false, false},
		{"format in comment", "SELECT 1 -- FORMAT TSV\n", "SELECT", "", "-", false, false, false},
		{"format in subquery", "SELECT * FROM (SELECT 1 FORMAT TSV)", "SELECT", "", "-", false, false, false},
		{"insert native", "INSERT INTO t (a, b) FORMAT Native\n\x00\x01", "INSERT", "Native", "\x00\x01", false, false, false},
		{"insert data after spaces", "INSERT INTO t FORMAT TSV  a\tb", "INSERT", "TSV", "a\tb", false, false, false},
		{"insert data keeps leading tab", "INSERT INTO t FORMAT TSV\n\tb", "INSERT", "TSV", "\tb", false, false, false},
		{"insert settings", "INSERT INTO t SETTINGS async_insert = 1 FORMAT CSV\n1,2", "INSERT", "CSV", "1,2", true, false, false},
		{"insert values", "INSERT INTO t VALUES (1, 'a')", "INSERT", "", "(1, 'a')", false, false, false},
		{"insert select", "INSERT INTO t SELECT 1", "INSERT", "", "-", false, false, false},
		{"insert column named format", "INSERT INTO t (`format`, x) FORMAT TSV\n1", "INSERT", "TSV", "1", false, false, false},
		{"two statements", "SELECT 1; SELECT 2", "SELECT", "", "-", false, true, false},
		{"trailing semicolon", "SELECT 1;\n-- done\n", "SELECT", "", "-", false, false, false},
		{"semicolon in string", "SELECT ';' ; ", "SELECT", "", "-", false, false, false},
		{"outfile", "SELECT 1 INTO OUTFILE 'x'", "SELECT", "", "-", false, false, true},
		{"infile", "INSERT INTO t FROM INFILE 'x' FORMAT TSV", "INSERT", "TSV", "", false, false, true},
		{"escaped quote", `SELECT 'a\' FORMAT TSV'`, "SELECT", "", "-", false, false, false},
		{"parenthesized", "(SELECT 1)", "(", "", "-", false, false, false},
		{"block comment", "/* x /* nested */ FORMAT TSV */ SELECT 1", "SELECT", "", "-", false, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := analyze(tc.sql)
			data := "-"
			if st.dataAt >= 0 {
				data = tc.sql[st.dataAt:]
			}
			if st.kind != tc.kind || st.format != tc.format || data != tc.data || (st.settingsAt >= 0) != tc.settings || st.multi != tc.multi || st.files != tc.files {
				t.Errorf("got kind %q format %q data %q settings %v multi %v files %v, want %q %q %q %v %v %v",
					st.kind, st.format, data, st.settingsAt >= 0, st.multi, st.files, tc.kind, tc.format, tc.data, tc.settings, tc.multi, tc.files)
			}
		})
	}
}

func TestInsertSQL(t *testing.T) {
	tests := []struct{ sql, want string }{
		{"INSERT INTO t (a) FORMAT Native\n", "INSERT INTO t (a) FROM INFILE '/p' FORMAT Native"},
		{"INSERT INTO t SETTINGS x = 1 FORMAT TSV\n", "INSERT INTO t FROM INFILE '/p' SETTINGS x = 1 FORMAT TSV"},
	}
	for _, tc := range tests {
		st := analyze(tc.sql)
		req := &request{sql: tc.sql[:st.dataAt], st: st}
		if got := req.insertSQL("/p"); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.sql, got, tc.want)
		}
	}
}

// FuzzAnalyze: the lexer reads SQL and data from the network; it must not panic, and the offsets
// it returns must lie inside the text.
func FuzzAnalyze(f *testing.F) {
	for _, s := range []string{"SELECT 1", "INSERT INTO t FORMAT Native\n\x00", "INSERT INTO t VALUES (1)", "SELECT '\\", "/* /*", "`a", "SELECT 1; x", "INSERT INTO t SETTINGS a=1 FORMAT"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		st := analyze(sql)
		for _, off := range []int{st.dataAt, st.formatAt, st.settingsAt, st.valuesAt} {
			if off > len(sql) {
				t.Fatalf("offset %d past the end of %d bytes", off, len(sql))
			}
		}
		if st.dataAt >= 0 && st.formatAt > st.dataAt {
			t.Fatalf("data at %d before FORMAT at %d", st.dataAt, st.formatAt)
		}
	})
}
