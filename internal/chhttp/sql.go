package chhttp

import (
	"strings"
)

// statement is what the server needs to know about one SQL statement: its kind, its output
// format, and for an INSERT where its data begins. It is found by a lexer that knows ClickHouse's
// strings, quoted names, comments and parentheses, not by a parser.
type statement struct {
	kind       string // first keyword in upper case (SELECT, INSERT, WITH, ...), or "(" for (SELECT ...)
	format     string // name after the last top-level FORMAT keyword; "" if none
	formatAt   int    // offset of that FORMAT keyword, -1 if none
	settingsAt int    // INSERT: offset of the first top-level SETTINGS keyword, -1 if none
	valuesAt   int    // INSERT: offset of the top-level VALUES keyword, -1 if none
	dataAt     int    // INSERT ... FORMAT f or VALUES: offset where inline data begins; -1 otherwise
	files      bool   // INFILE or OUTFILE at top level
	multi      bool   // a second statement follows a top-level ';'
	unclosed   bool   // a string, quoted name or comment runs to the end of the text
}

type token struct {
	text  string // keyword or name as written; punctuation character
	start int
	end   int
	word  bool
}

// lexer walks the tokens of sql, skipping whitespace and comments.
type lexer struct {
	sql      string
	pos      int
	unclosed bool
}

func isWordByte(c byte) bool {
	return c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

// next returns the next token, or false at the end of the text.
func (l *lexer) next() (token, bool) {
	s := l.sql
	for l.pos < len(s) {
		c := s[l.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			l.pos++
		case c == '-' && strings.HasPrefix(s[l.pos:], "--"), c == '#':
			if i := strings.IndexByte(s[l.pos:], '\n'); i >= 0 {
				l.pos += i + 1
			} else {
				l.pos = len(s)
			}
		case c == '/' && strings.HasPrefix(s[l.pos:], "/*"):
			depth := 0
			for l.pos < len(s) {
				if strings.HasPrefix(s[l.pos:], "/*") {
					depth++
					l.pos += 2
				} else if strings.HasPrefix(s[l.pos:], "*/") {
					depth--
					l.pos += 2
					if depth == 0 {
						break
					}
				} else {
					l.pos++
				}
			}
			if depth != 0 {
				l.unclosed = true
			}
		case c == '\'' || c == '"' || c == '`':
			start := l.pos
			l.pos++
			closed := false
			for l.pos < len(s) {
				d := s[l.pos]
				if d == '\\' {
					l.pos += 2
					continue
				}
				l.pos++
				if d == c {
					if l.pos < len(s) && s[l.pos] == c { // doubled quote
						l.pos++
						continue
					}
					closed = true
					break
				}
			}
			if l.pos > len(s) {
				l.pos = len(s)
			}
			if !closed {
				l.unclosed = true
			}
			return token{text: s[start:l.pos], start: start, end: l.pos, word: c != '\''}, true
		case isWordByte(c):
			start := l.pos
			for l.pos < len(s) && isWordByte(s[l.pos]) {
				l.pos++
			}
			return token{text: s[start:l.pos], start: start, end: l.pos, word: true}, true
		default:
			l.pos++
			return token{text: s[l.pos-1 : l.pos], start: l.pos - 1, end: l.pos}, true
		}
	}
	return token{}, false
}

func (t token) is(keyword string) bool { return t.word && strings.EqualFold(t.text, keyword) }

// unquote returns a name without its quotes.
func (t token) name() string {
	if len(t.text) >= 2 && (t.text[0] == '"' || t.text[0] == '`') {
		return t.text[1 : len(t.text)-1]
	}
	return t.text
}

// analyze finds what the server needs in sql. For an INSERT it stops where inline data begins,
// so sql may continue with data of any format.
func analyze(sql string) statement {
	st := statement{formatAt: -1, settingsAt: -1, valuesAt: -1, dataAt: -1}
	l := &lexer{sql: sql}
	depth := 0
	first := true
	for {
		t, ok := l.next()
		if !ok {
			break
		}
		if first {
			first = false
			st.kind = strings.ToUpper(t.text)
		}
		switch {
		case t.text == "(" || t.text == "[":
			depth++
			continue
		case t.text == ")" || t.text == "]":
			if depth > 0 {
				depth--
			}
			continue
		}
		if depth > 0 {
			continue
		}
		switch {
		case t.text == ";":
			if _, more := l.next(); more {
				st.multi = true
			}
			st.unclosed = l.unclosed
			return st
		case t.is("INFILE"), t.is("OUTFILE"):
			st.files = true
		case t.is("SETTINGS") && st.kind == "INSERT" && st.settingsAt < 0:
			st.settingsAt = t.start
		case t.is("VALUES") && st.kind == "INSERT" && st.valuesAt < 0 && st.formatAt < 0:
			st.valuesAt = t.start
			st.dataAt = skipToData(sql, t.end)
			return st
		case t.is("FORMAT"):
			name, ok := l.next()
			if !ok || !name.word {
				continue
			}
			st.formatAt, st.format = t.start, name.name()
			if st.kind == "INSERT" {
				st.dataAt = skipToData(sql, name.end)
				return st
			}
		}
	}
	st.unclosed = l.unclosed
	return st
}

// skipToData returns where inline INSERT data begins after offset i, as ClickHouse does: after
// the first newline if there is one, or after all the whitespace otherwise.
func skipToData(sql string, i int) int {
	for i < len(sql) && (sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\f') {
		i++
	}
	if i < len(sql) && sql[i] == '\r' {
		i++
	}
	if i < len(sql) && sql[i] == '\n' {
		i++
	}
	return i
}

// readOnlyKinds are the statements a readonly request (GET, or readonly=1) may run.
var readOnlyKinds = map[string]bool{
	"SELECT": true, "WITH": true, "SHOW": true, "DESCRIBE": true, "DESC": true,
	"EXISTS": true, "EXPLAIN": true, "(": true,
}
