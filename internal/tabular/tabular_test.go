package tabular

import (
	"bytes"
	"testing"
)

// out is what ClickHouse prints for
// SELECT 'a' AS host, 3 AS n, NULL::Nullable(Float64) AS r, [1,2] AS xs, 'x,"y"' AS s
// in JSONCompactEachRowWithNamesAndTypes with 64-bit integers unquoted.
const out = `["host","n","r","xs","s"]
["String","UInt8","Nullable(Float64)","Array(UInt8)","String"]
["a",3,null,[1,2],"x,\"y\""]
["bb",12,0.25,[],""]
`

func TestFormats(t *testing.T) {
	r, err := Decode([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ format, want string }{
		{"table", "host   n     r  xs   s\n" +
			"a      3     -  1,2  x,\"y\"\n" +
			"bb    12  0.25       \n"},
		{"csv", "host,n,r,xs,s\na,3,,\"1,2\",\"x,\"\"y\"\"\"\nbb,12,0.25,,\n"},
		{"json", `{"columns":[{"name":"host","type":"String"},{"name":"n","type":"UInt8"},{"name":"r","type":"Nullable(Float64)"},{"name":"xs","type":"Array(UInt8)"},{"name":"s","type":"String"}],"rows":[` +
			"\n" + `{"host":"a","n":3,"r":null,"xs":[1,2],"s":"x,\"y\""},` +
			"\n" + `{"host":"bb","n":12,"r":0.25,"xs":[],"s":""}` + "\n]}\n"},
	}
	for _, tc := range tests {
		t.Run(tc.format, func(t *testing.T) {
			var b bytes.Buffer
			if err := r.Render(&b, tc.format); err != nil {
				t.Fatal(err)
			}
			if b.String() != tc.want {
				t.Errorf("got\n%q\nwant\n%q", b.String(), tc.want)
			}
		})
	}
	if err := r.Render(&bytes.Buffer{}, "xml"); err == nil {
		t.Error("format xml: got no error")
	}
}

func TestEmpty(t *testing.T) {
	r, err := Decode(nil)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	r.Text(&b)
	if b.String() != "(no rows)\n" {
		t.Errorf("got %q", b.String())
	}
}
