package collectorcmd

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A collector built for the fleet must start without libchdb.so: it must not link chdb-go (whose
// init panics when the library is missing) nor the packages that wrap it.
func TestCollectorDoesNotNeedLibchdb(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to build the collector with")
	}
	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	mod := filepath.Dir(strings.TrimSpace(string(root)))
	list := exec.Command("go", "list", "-deps", "./collector")
	list.Dir = mod
	deps, err := list.Output()
	if err != nil {
		t.Fatalf("go list -deps ./collector: %v", err)
	}
	for _, bad := range []string{"github.com/chdb-io/chdb-go", "github.com/dnsloss/dnsloss/internal/chembed", "github.com/dnsloss/dnsloss/internal/chdblib"} {
		for _, d := range strings.Fields(string(deps)) {
			if d == bad || strings.HasPrefix(d, bad+"/") {
				t.Errorf("the collector links %s", d)
			}
		}
	}
	bin := filepath.Join(t.TempDir(), "collector")
	build := exec.Command("go", "build", "-o", bin, "./collector")
	build.Dir = mod
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./collector: %v\n%s", err, out)
	}
	// No library anywhere it could be looked for.
	run := exec.Command(bin, "capture", "--help")
	run.Env = []string{"PATH=/usr/bin:/bin", "CHDB_LIB_PATH=" + filepath.Join(t.TempDir(), "nope", "libchdb.so"), "HOME=" + t.TempDir()}
	out, err := run.CombinedOutput()
	if err != nil {
		t.Fatalf("collector capture --help without libchdb.so: %v\n%s", err, out)
	}
	for _, want := range []string{"CAP_NET_RAW", "CAP_NET_ADMIN", "AmbientCapabilities", "--spool-dir", "--metrics-listen"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("capture --help does not mention %s", want)
		}
	}
	// A password on the command line is refused, and not echoed.
	run = exec.Command(bin, "capture", "-i", "lo", "--clickhouse", "http://u:s3cr3t@127.0.0.1:1/db")
	out, err = run.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no password in the URL") || strings.Contains(string(out), "s3cr3t") {
		t.Errorf("a password in --clickhouse: got %v\n%s\nwant a refusal that does not repeat it", err, out)
	}
	if ldd, err := exec.Command("ldd", bin).CombinedOutput(); err == nil && strings.Contains(string(ldd), "chdb") {
		t.Errorf("the collector binary needs libchdb:\n%s", ldd)
	}
}
