package sink

import (
	"os"
	"testing"

	"github.com/dnsloss/dnsloss/internal/dnsrow"
)

func spoolFile(t testing.TB, b *Block) []byte {
	t.Helper()
	dir := t.TempDir()
	sp := &spool{dir: dir}
	h, err := headerLine(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.writeFile(b, h); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(sp.path(b))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// Spool files are read back from disk: a damaged one must give an error, never a panic or a
// runaway allocation, and what passes the checks must decode.
func FuzzSpoolFile(f *testing.F) {
	b := dnsrow.NewBatch()
	b.Append(&dnsrow.Message{Host: []byte("h"), QName: []byte("a.example"), EDNSOptions: []uint16{10}})
	data, err := b.EncodeNative(nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(spoolFile(f, &Block{Table: "dns_messages", Rows: 1, Native: data, Seq: 7, Token: "t"}))
	f.Add([]byte(spoolMagic + "{\n"))
	f.Add(damagedNative)
	f.Fuzz(func(t *testing.T, file []byte) {
		_, native, err := parseSpoolFile(file)
		if err == nil {
			DecodeNative(native)
		}
	})
}

// damagedNative is a fuzzer find: a block header claiming a column name of 162 TB made ch-go's
// decoder try to allocate it. Behind a valid spool header its checksum does not match.
var damagedNative = []byte("\x19\x17\xd0\xe0\xb6\xd2\xee\xee$\xa7Kep\f\x03\x0e\xf8d\x8f\xae\xb0\x94{\x93<*\bƾe")

func TestDamagedSpoolFile(t *testing.T) {
	good := spoolFile(t, &Block{Table: "dns_messages", Rows: 1, Native: []byte("abc"), Seq: 1, Token: "t"})
	tests := []struct {
		name string
		file []byte
	}{
		{"fuzzer find behind a valid header", append(good[:len(good)-3:len(good)-3], damagedNative...)},
		{"one byte flipped", append(append([]byte{}, good[:len(good)-1]...), 'x')},
		{"cut short", good[:len(good)-1]},
		{"no header", damagedNative},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := parseSpoolFile(tc.file); err == nil {
				t.Error("got no error, want one")
			}
		})
	}
	if _, native, err := parseSpoolFile(good); err != nil || string(native) != "abc" {
		t.Errorf("intact file: got %q, %v; want abc", native, err)
	}
}
