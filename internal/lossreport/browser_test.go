package lossreport_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dnsloss/dnsloss/internal/chtest"
	"github.com/dnsloss/dnsloss/internal/ingest"
	"github.com/dnsloss/dnsloss/internal/lossreport"
)

// startChromium starts headless Chromium with a fresh profile and an ephemeral DevTools port,
// and returns a DevTools client attached to its page.
func startChromium(t *testing.T, bin, dir string) *cdpClient {
	t.Helper()
	profile := filepath.Join(dir, "profile")
	logf, err := os.Create(filepath.Join(dir, "chromium.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-default-apps",
		"--disable-extensions", "--mute-audio", "--hide-scrollbars", "--window-size=1280,2200",
		"--user-data-dir="+profile, "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank")
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so that the cleanup ends the browser and all its helpers.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start chromium: %v", err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		logf.Close()
	})
	// Chromium writes the port it chose into the profile once it listens.
	var port string
	deadline := time.Now().Add(60 * time.Second)
	for port == "" {
		if b, err := os.ReadFile(filepath.Join(profile, "DevToolsActivePort")); err == nil {
			if lines := strings.Split(string(b), "\n"); len(lines) >= 2 && lines[0] != "" {
				port = lines[0]
			}
		}
		if port == "" {
			if time.Now().After(deadline) {
				log, _ := os.ReadFile(logf.Name())
				t.Fatalf("chromium did not open its DevTools port:\n%s", log)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	resp, err := http.Get("http://127.0.0.1:" + port + "/json/list")
	if err != nil {
		t.Fatalf("cannot list chromium's pages: %v", err)
	}
	defer resp.Body.Close()
	var targets []struct {
		Type string `json:"type"`
		WS   string `json:"webSocketDebuggerUrl"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&targets); err != nil {
		t.Fatalf("cannot read chromium's pages: %v", err)
	}
	for _, tg := range targets {
		if tg.Type == "page" {
			ws, err := wsDial(tg.WS)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ws.c.Close() })
			return newCDP(ws)
		}
	}
	t.Fatalf("chromium has no page: %+v", targets)
	return nil
}

// pageState is what the page shows, read in the browser.
type pageState struct {
	Tables  map[string][]map[string]string `json:"tables"`
	Plots   []plotState                    `json:"plots"`
	Summary string                         `json:"summary"`
	Worst   []string                       `json:"worst"`
}

type plotState struct {
	Chart   string `json:"chart"`
	UPlot   bool   `json:"uplot"`
	Width   int    `json:"width"`
	Ink     int    `json:"ink"`     // pixels of the first series' colour on the canvas
	Legend  int    `json:"legend"`  // series in the legend
	IsEmpty string `json:"isEmpty"` // the page said it had nothing to plot
}

const readPage = `JSON.stringify((() => {
  const tables = {};
  for (const t of document.querySelectorAll("table")) {
    tables[t.id] = [...t.tBodies[0].rows].map(r => Object.fromEntries([...r.cells].map(c => [c.dataset.col, c.textContent])));
  }
  const colour = {hosts: [217, 72, 15], rtt: [47, 111, 223], timeline: [47, 111, 223]};
  const plots = [...document.querySelectorAll("[data-chart]")].map(el => {
    const cv = el.querySelector("canvas");
    let ink = 0;
    if (cv) {
      const d = cv.getContext("2d").getImageData(0, 0, cv.width, cv.height).data;
      const c = colour[el.dataset.chart];
      for (let i = 0; i < d.length; i += 4) {
        if (d[i+3] > 0 && Math.abs(d[i]-c[0]) < 40 && Math.abs(d[i+1]-c[1]) < 40 && Math.abs(d[i+2]-c[2]) < 40) ink++;
      }
    }
    return {chart: el.dataset.chart, uplot: !!el.querySelector(".uplot"), width: cv ? cv.width : 0, ink,
      legend: el.querySelectorAll(".u-legend .u-series").length, isEmpty: el.dataset.empty || ""};
  });
  return {tables, plots, summary: document.getElementById("summary").textContent,
    worst: [...document.querySelectorAll("#worst-lookups li")].map(li => li.textContent)};
})())`

// TestHTMLInChromium renders the HTML report of the lab capture with loss in headless Chromium:
// the page loads without console errors and without any request but its own, its three plots
// are drawn, and its tables show the JSON report's numbers. The screenshot is kept in the
// test's temporary directory (and copied to $DNSLOSS_SCREENSHOT when set).
func TestHTMLInChromium(t *testing.T) {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (Debian package chromium; `make test` installs it through TEST_APT): the HTML report is not checked in a browser")
	}
	s := chtest.Fresh(t)
	ctx := context.Background()
	if _, err := ingest.File(ctx, s, filepath.Join("..", "..", "testdata", "lab", "drop-name.pcap"), ingest.Options{}); err != nil {
		t.Fatal(err)
	}
	r, err := lossreport.Build(ctx, s, lossreport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var page, js bytes.Buffer
	if err := r.HTML(&page); err != nil {
		t.Fatal(err)
	}
	if err := r.JSON(&js); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()

	// Serve the page from a local server that logs every request it gets.
	var mu sync.Mutex
	var served []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		served = append(served, req.URL.Path)
		mu.Unlock()
		if req.URL.Path != "/report.html" {
			http.NotFound(w, req)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page.Bytes())
	}))
	defer srv.Close()
	pageURL := srv.URL + "/report.html"

	cdp := startChromium(t, bin, dir)
	for _, m := range []string{"Runtime.enable", "Log.enable", "Network.enable", "Page.enable"} {
		if err := cdp.call(m, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := cdp.call("Page.navigate", map[string]any{"url": pageURL}, nil); err != nil {
		t.Fatal(err)
	}
	if err := cdp.waitEvent("Page.loadEventFired", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	var eval struct {
		Result struct {
			Value string `json:"value"`
		} `json:"result"`
		Exception json.RawMessage `json:"exceptionDetails"`
	}
	if err := cdp.call("Runtime.evaluate", map[string]any{"expression": readPage, "returnByValue": true}, &eval); err != nil {
		t.Fatal(err)
	}
	if eval.Exception != nil {
		t.Fatalf("reading the page failed: %s", eval.Exception)
	}
	var shot struct {
		Data string `json:"data"`
	}
	if err := cdp.call("Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true}, &shot); err != nil {
		t.Fatal(err)
	}
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		t.Fatal(err)
	}
	shotPath := filepath.Join(dir, "report.png")
	if err := os.WriteFile(shotPath, png, 0o644); err != nil {
		t.Fatal(err)
	}
	if p := os.Getenv("DNSLOSS_SCREENSHOT"); p != "" {
		os.WriteFile(p, png, 0o644)
	}
	t.Logf("screenshot: %s (%d bytes)", shotPath, len(png))

	t.Run("no console errors", func(t *testing.T) {
		for _, e := range cdp.eventsNamed("Runtime.exceptionThrown") {
			t.Errorf("exception: %s", e.Params)
		}
		for _, e := range cdp.eventsNamed("Runtime.consoleAPICalled") {
			var p struct{ Type string }
			json.Unmarshal(e.Params, &p)
			if p.Type == "error" || p.Type == "assert" || p.Type == "warning" {
				t.Errorf("console %s: %s", p.Type, e.Params)
			}
		}
		for _, e := range cdp.eventsNamed("Log.entryAdded") {
			var p struct {
				Entry struct{ Level, Text, URL string }
			}
			json.Unmarshal(e.Params, &p)
			if p.Entry.Level == "error" || p.Entry.Level == "warning" {
				t.Errorf("log %s: %s %s", p.Entry.Level, p.Entry.Text, p.Entry.URL)
			}
		}
	})

	t.Run("no network requests", func(t *testing.T) {
		var urls []string
		for _, e := range cdp.eventsNamed("Network.requestWillBeSent") {
			var p struct{ Request struct{ URL string } }
			json.Unmarshal(e.Params, &p)
			urls = append(urls, p.Request.URL)
		}
		if len(urls) != 1 || urls[0] != pageURL {
			t.Errorf("requests the page made: got %q, want only the page %s", urls, pageURL)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(served) != 1 || served[0] != "/report.html" {
			t.Errorf("requests the server got: got %q, want only /report.html", served)
		}
	})

	var st pageState
	if err := json.Unmarshal([]byte(eval.Result.Value), &st); err != nil {
		t.Fatalf("cannot read the page state: %v\n%s", err, eval.Result.Value)
	}

	t.Run("plots", func(t *testing.T) {
		want := map[string]int{"hosts": 2, "rtt": 2, "timeline": 2} // legend: x plus one series
		if r.LookupsAvailable {
			want["hosts"] = 3 // and failed lookups
		}
		if len(st.Plots) != len(want) {
			t.Fatalf("plots: got %d, want %d", len(st.Plots), len(want))
		}
		for _, p := range st.Plots {
			if !p.UPlot || p.IsEmpty != "" || p.Width < 200 {
				t.Errorf("%s: got uplot %v, empty %q, canvas width %d; want a drawn plot", p.Chart, p.UPlot, p.IsEmpty, p.Width)
			}
			if p.Ink < 20 {
				t.Errorf("%s: got %d pixels of the series colour, want the series drawn", p.Chart, p.Ink)
			}
			if p.Legend != want[p.Chart] {
				t.Errorf("%s legend: got %d series, want %d", p.Chart, p.Legend, want[p.Chart])
			}
		}
	})

	t.Run("numbers equal the JSON report", func(t *testing.T) {
		var doc map[string]json.RawMessage
		if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		// Every value of a per host and server line is on the page; the per host table shows
		// a summary, each of its values as in the JSON.
		for _, tc := range []struct {
			table, key string
			all        bool
		}{{"table-rows", "rows", true}, {"table-hosts", "hosts", false}} {
			var lines []map[string]json.RawMessage
			if err := json.Unmarshal(doc[tc.key], &lines); err != nil {
				t.Fatal(err)
			}
			shown := st.Tables[tc.table]
			if len(shown) != len(lines) || len(lines) == 0 {
				t.Fatalf("%s: got %d lines on the page, want %d (JSON %s)", tc.table, len(shown), len(lines), tc.key)
			}
			for i, line := range lines {
				for k, raw := range line {
					v := string(raw)
					if v == "" || v[0] == '[' || v[0] == '{' || v == "true" || v == "false" {
						continue // lists, nested objects and flags are not table cells
					}
					want := strings.Trim(v, `"`)
					got, ok := shown[i][k]
					if v == "null" {
						if ok && got != "-" {
							t.Errorf("%s line %d %s: got %q, want - (null)", tc.table, i, k, got)
						}
						continue
					}
					if !ok && tc.all {
						t.Errorf("%s line %d: no %s column, JSON has %s", tc.table, i, k, want)
					} else if !ok {
						continue
					} else if got != want {
						t.Errorf("%s line %d %s: got %q, want %q (JSON)", tc.table, i, k, got, want)
					}
				}
			}
		}
		var total struct{ Attempts, Unanswered int64 }
		json.Unmarshal(doc["total"], &total)
		for _, w := range []string{strconv.FormatInt(total.Attempts, 10) + " query attempts", strconv.FormatInt(total.Unanswered, 10) + " unanswered"} {
			if !strings.Contains(st.Summary, w) {
				t.Errorf("summary %q lacks %q", st.Summary, w)
			}
		}
		var worst []struct{ Line string }
		json.Unmarshal(doc["worst_lookups"], &worst)
		if len(worst) == 0 || len(st.Worst) != len(worst) {
			t.Fatalf("worst lookups: got %d on the page, want %d (JSON), at least 1", len(st.Worst), len(worst))
		}
		for i := range worst {
			if st.Worst[i] != worst[i].Line {
				t.Errorf("worst lookup %d: got %q, want %q", i, st.Worst[i], worst[i].Line)
			}
		}
	})
	if t.Failed() {
		log, _ := os.ReadFile(filepath.Join(dir, "chromium.log"))
		fmt.Fprintf(os.Stderr, "chromium log:\n%s\n", lastLines(string(log), 30))
	}
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
