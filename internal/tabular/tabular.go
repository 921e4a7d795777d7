// Package tabular holds a query result as named, typed columns and renders it for people (an
// aligned text table) and for programs (JSON, CSV). Every format carries the same values.
package tabular

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/dnsloss/dnsloss/internal/chstore"
)

// Result is a query result.
type Result struct {
	Columns []string
	Types   []string
	Rows    [][]any // string, json.Number, bool, nil, or []any for arrays
}

// Query runs sql on store and decodes the result. Numbers stay exact (json.Number).
func Query(ctx context.Context, store chstore.Store, sql string, params chstore.Params) (*Result, error) {
	sql = strings.TrimRight(strings.TrimSpace(sql), ";") +
		"\nSETTINGS output_format_json_quote_64bit_integers = 0, output_format_json_quote_decimals = 0"
	out, err := store.Query(ctx, sql, params, "JSONCompactEachRowWithNamesAndTypes")
	if err != nil {
		return nil, err
	}
	return Decode(out)
}

// Decode parses ClickHouse's JSONCompactEachRowWithNamesAndTypes output.
func Decode(out []byte) (*Result, error) {
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	var r Result
	if err := dec.Decode(&r.Columns); err != nil {
		if err == io.EOF {
			return &r, nil
		}
		return nil, fmt.Errorf("cannot decode result column names: %w", err)
	}
	if err := dec.Decode(&r.Types); err != nil {
		return nil, fmt.Errorf("cannot decode result column types: %w", err)
	}
	for {
		var row []any
		err := dec.Decode(&row)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("cannot decode result row %d: %w", len(r.Rows)+1, err)
		}
		r.Rows = append(r.Rows, row)
	}
	return &r, nil
}

// Formats are the names Render accepts.
var Formats = []string{"table", "json", "csv"}

// Render writes r in format ("table", "json" or "csv").
func (r *Result) Render(w io.Writer, format string) error {
	switch format {
	case "", "table":
		return r.Text(w)
	case "json":
		return r.JSON(w)
	case "csv":
		return r.CSV(w)
	}
	return fmt.Errorf("unknown format %q (want one of %s)", format, strings.Join(Formats, ", "))
}

// Cell renders one value as text: NULL as "-", arrays comma-separated.
func Cell(v any) string {
	switch x := v.(type) {
	case nil:
		return "-"
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		if x {
			return "1"
		}
		return "0"
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = Cell(e)
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}

func numeric(typ string) bool {
	t := strings.TrimPrefix(strings.TrimSuffix(typ, ")"), "Nullable(")
	for _, p := range []string{"UInt", "Int", "Float", "Decimal"} {
		if strings.HasPrefix(t, p) {
			return true
		}
	}
	return false
}

// Text writes an aligned table with a header line; numbers are right-aligned.
func (r *Result) Text(w io.Writer) error {
	if len(r.Rows) == 0 {
		_, err := fmt.Fprintln(w, "(no rows)")
		return err
	}
	width := make([]int, len(r.Columns))
	for i, c := range r.Columns {
		width[i] = utf8.RuneCountInString(c)
	}
	cells := make([][]string, len(r.Rows))
	for i, row := range r.Rows {
		cells[i] = make([]string, len(row))
		for j, v := range row {
			cells[i][j] = Cell(v)
			if n := utf8.RuneCountInString(cells[i][j]); n > width[j] {
				width[j] = n
			}
		}
	}
	var b strings.Builder
	line := func(vals []string) {
		for j, v := range vals {
			pad := strings.Repeat(" ", width[j]-utf8.RuneCountInString(v))
			if j > 0 {
				b.WriteString("  ")
			}
			if j < len(r.Types) && numeric(r.Types[j]) {
				b.WriteString(pad + v)
			} else if j == len(vals)-1 {
				b.WriteString(v)
			} else {
				b.WriteString(v + pad)
			}
		}
		b.WriteByte('\n')
	}
	line(r.Columns)
	for _, row := range cells {
		line(row)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// JSON writes {"columns":[{"name","type"}...],"rows":[{col: value}...]} with columns in order.
func (r *Result) JSON(w io.Writer) error {
	var b bytes.Buffer
	b.WriteString(`{"columns":[`)
	for i, c := range r.Columns {
		if i > 0 {
			b.WriteByte(',')
		}
		name, _ := json.Marshal(c)
		typ, _ := json.Marshal(r.Types[i])
		fmt.Fprintf(&b, `{"name":%s,"type":%s}`, name, typ)
	}
	b.WriteString(`],"rows":[`)
	for i, row := range r.Rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("\n{")
		for j, v := range row {
			if j > 0 {
				b.WriteByte(',')
			}
			name, _ := json.Marshal(r.Columns[j])
			val, err := json.Marshal(v)
			if err != nil {
				return err
			}
			b.Write(name)
			b.WriteByte(':')
			b.Write(val)
		}
		b.WriteByte('}')
	}
	b.WriteString("\n]}\n")
	_, err := w.Write(b.Bytes())
	return err
}

// CSV writes a header line and one line per row; NULL is an empty field.
func (r *Result) CSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(r.Columns); err != nil {
		return err
	}
	rec := make([]string, len(r.Columns))
	for _, row := range r.Rows {
		for j, v := range row {
			if v == nil {
				rec[j] = ""
			} else {
				rec[j] = Cell(v)
			}
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
