//go:build !nochdb

package chserver_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/dnsloss/dnsloss/internal/chserver"
	"github.com/dnsloss/dnsloss/internal/chstore"
	"github.com/dnsloss/dnsloss/internal/chtest"
	"github.com/dnsloss/dnsloss/internal/dnsrow"
	"github.com/dnsloss/dnsloss/internal/tabular"
	"github.com/dnsloss/dnsloss/queries"
)

// The server here is the embedded engine behind `analyzer serve`'s HTTP interface (package
// chhttp): no ClickHouse server >= 25.8 runs on the machines these tests run on.
func TestMain(m *testing.M) { os.Exit(chtest.Main(m)) }

func open(t *testing.T, url string, opt chserver.Options) *chserver.Store {
	t.Helper()
	s, err := chserver.Open(context.Background(), url, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStoreOverHTTP(t *testing.T) {
	chtest.Fresh(t)
	addr := chtest.Serve(t, "analyst", "pw")
	s := open(t, "http://"+addr+"/default", chserver.Options{User: "analyst", Password: "pw"})
	ctx := context.Background()

	t.Run("exec and query with parameters", func(t *testing.T) {
		name := "a\tb'c\\d"
		if err := s.Exec(ctx, "INSERT INTO dnsloss_settings (name, value) VALUES ({n:String}, {v:Float64})", chstore.Params{"n": name, "v": "2.5"}); err != nil {
			t.Fatal(err)
		}
		out, err := s.Query(ctx, "SELECT name, value FROM dnsloss_settings WHERE name = {n:String}", chstore.Params{"n": name}, "JSONEachRow")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(out), `{"name":"a\tb'c\\d","value":2.5}`+"\n"; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("insert native", func(t *testing.T) {
		b := dnsrow.NewBatch()
		for i := range 3000 {
			b.Append(&dnsrow.Message{Host: []byte("remote"), TS: int64(i) * 1e6, IPVersion: 4, ID: uint16(i), QName: []byte(fmt.Sprintf("x%d.example", i))})
		}
		err := s.InsertNative(ctx, dnsrow.Table, b.Columns(), func(w io.Writer) error {
			buf, err := b.EncodeNative(nil)
			if err != nil {
				return err
			}
			_, err = w.Write(buf)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		// The same rows again (as ingest --replace does after a DELETE) are stored again.
		err = s.InsertNative(ctx, dnsrow.Table, b.Columns(), func(w io.Writer) error {
			buf, _ := b.EncodeNative(nil)
			_, err := w.Write(buf)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		out, err := s.Query(ctx, "SELECT count(), sum(id) FROM dns_messages WHERE host = 'remote'", nil, "TSV")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(out), "6000\t8997000\n"; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("report equals the embedded one", func(t *testing.T) {
		sql, err := queries.Report("loss_by_host")
		if err != nil {
			t.Fatal(err)
		}
		remote, err := tabular.Query(ctx, s, sql, nil)
		if err != nil {
			t.Fatal(err)
		}
		local, err := tabular.Query(ctx, chtest.Store(t), sql, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(local.Rows) == 0 || !reflect.DeepEqual(remote, local) {
			t.Errorf("got %v, want %v (and at least one row)", remote, local)
		}
	})
	t.Run("error", func(t *testing.T) {
		_, err := s.Query(ctx, "SELECT * FROM no_such_table", nil, "TSV")
		if err == nil || !strings.Contains(err.Error(), "Code: 60") && !strings.Contains(err.Error(), "code: 60") {
			t.Errorf("got %v, want the server's exception 60", err)
		}
	})
}

func TestOpenErrors(t *testing.T) {
	addr := chtest.Serve(t, "default", "pw")
	tests := []struct {
		name, url string
		opt       chserver.Options
		want      string
	}{
		{"password in URL", "http://default:pw@" + addr + "/", chserver.Options{}, "must not hold a user or password"},
		{"scheme", "ftp://" + addr, chserver.Options{}, "scheme"},
		{"parameters", "http://" + addr + "/?x=1", chserver.Options{}, "parameters"},
		{"wrong password", "http://" + addr + "/", chserver.Options{Password: "nope"}, "516"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := chserver.Open(context.Background(), tc.url, tc.opt)
			if err == nil {
				s.Close()
				t.Fatal("got no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error mentioning %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "pw") && tc.name == "password in URL" {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
	if _, err := chserver.Open(context.Background(), "http://a:b@x", chserver.Options{}); !errors.Is(err, chserver.ErrCredentialsInURL) {
		t.Errorf("got %v, want ErrCredentialsInURL", err)
	}
}
