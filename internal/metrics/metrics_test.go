package metrics

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	fams := []Family{
		{Name: "dnsloss_packets_total", Help: "Packets received.", Type: Counter, Samples: []Sample{
			{Labels: map[string]string{"iface": "eth0", "source": "afpacket:eth0"}, Value: 12},
			{Labels: map[string]string{"iface": `we"ird\`}, Value: 1.5},
		}},
		{Name: "dnsloss_spool_bytes", Help: "Bytes\nspooled.", Type: Gauge, Samples: []Sample{{Value: 1e9}}},
	}
	want := `# HELP dnsloss_packets_total Packets received.
# TYPE dnsloss_packets_total counter
dnsloss_packets_total{iface="eth0",source="afpacket:eth0"} 12
dnsloss_packets_total{iface="we\"ird\\"} 1.5
# HELP dnsloss_spool_bytes Bytes\nspooled.
# TYPE dnsloss_spool_bytes gauge
dnsloss_spool_bytes 1e+09
`
	var b strings.Builder
	if err := Write(&b, fams); err != nil {
		t.Fatal(err)
	}
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	rec := httptest.NewRecorder()
	Handler(func() []Family { return fams }).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Body.String() != want || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Errorf("handler: got %q (%s)", rec.Body.String(), rec.Header().Get("Content-Type"))
	}
}
