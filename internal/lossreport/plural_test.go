package lossreport_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dnsloss/dnsloss/internal/lossreport"
)

// TestOneOfEach: the text lines say "1 host", "1 query attempt", "1 failed lookup", not
// "1 hosts" (and keep the plural for other counts).
func TestOneOfEach(t *testing.T) {
	one := int64(1)
	at := time.Date(2026, 12, 3, 17, 38, 0, 0, time.UTC)
	r := &lossreport.Report{
		Total: lossreport.Counts{Attempts: 1, Unanswered: 1, FailedLookups: &one, MaskedTimeouts: &one},
		Hosts: []lossreport.Host{{Host: "web-1", Counts: lossreport.Counts{Attempts: 1, Unanswered: 1}}},
		CaptureDrops: []lossreport.CaptureDrop{{Host: "web-1", Source: "kernel", Start: at, End: at.Add(time.Second),
			Packets: 1, KernelDrops: 1, ToolDrops: 1}},
	}
	var b strings.Builder
	if err := r.Text(&b); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	for _, want := range []string{
		"1 query attempt from 1 host: 1 unanswered",
		"1 failed lookup, 1 masked timeout.",
		"Capture drops in 1 interval (web-1)",
		"1 kernel drop, 1 tool drop of 1 packet (kernel)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	r.Total.Attempts = 2
	r.Hosts = append(r.Hosts, lossreport.Host{Host: "web-2"})
	if s := strings.Join(r.Summary(), "\n"); !strings.Contains(s, "2 query attempts from 2 hosts") {
		t.Errorf("summary lacks the plurals:\n%s", s)
	}
}
