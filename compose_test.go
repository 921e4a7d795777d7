package dnsloss_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// No Docker engine runs on our machines, so docker-compose.yml cannot be started in CI. This test
// checks what can be checked without one: every command it runs names subcommands and flags that
// the programs have, and the ClickHouse image is pinned to a version clickhouse-go supports.
func TestComposeCommandsExist(t *testing.T) {
	raw, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	compose := string(raw)
	if m := regexp.MustCompile(`clickhouse/clickhouse-server:(\d+)\.(\d+)`).FindStringSubmatch(compose); m == nil {
		t.Error("the ClickHouse image is not pinned to a version")
	} else if m[1] < "25" || (m[1] == "25" && len(m[2]) == 1 && m[2] < "8") {
		t.Errorf("ClickHouse image %s.%s is older than 25.8, clickhouse-go's supported minimum", m[1], m[2])
	}

	dir := t.TempDir()
	bins := map[string]string{}
	for _, name := range []string{"analyzer", "collector"} {
		bins[name] = filepath.Join(dir, name)
		if out, err := exec.Command("go", "build", "-o", bins[name], "./"+name).CombinedOutput(); err != nil {
			t.Fatalf("go build ./%s: %v\n%s", name, err, out)
		}
	}
	help := func(bin string, args ...string) string {
		out, err := exec.Command(bin, append(args, "--help")...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s --help: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	entry := regexp.MustCompile(`entrypoint: \["/usr/local/bin/(\w+)"\]`)
	command := regexp.MustCompile(`(?s)command: \[(.*?)\]`)
	token := regexp.MustCompile(`"([^"]*)"`)
	services := regexp.MustCompile(`\n  [a-z-]+:\n`).Split(compose, -1)
	checked := 0
	for _, svc := range services {
		e, c := entry.FindStringSubmatch(svc), command.FindStringSubmatch(svc)
		if e == nil || c == nil {
			continue
		}
		bin := bins[e[1]]
		var args []string
		for _, m := range token.FindAllStringSubmatch(c[1], -1) {
			args = append(args, m[1])
		}
		// Subcommands are the words that are neither flags nor flag values.
		var subs, flags []string
		for i := 0; i < len(args); i++ {
			if strings.HasPrefix(args[i], "--") {
				flags = append(flags, args[i])
				i++ // its value
				continue
			}
			subs = append(subs, args[i])
		}
		text := help(bin) + help(bin, subs...)
		for _, f := range flags {
			if !regexp.MustCompile(`(^|[\s,])` + regexp.QuoteMeta(f) + `\b`).MatchString(text) {
				t.Errorf("docker-compose.yml runs %s %s with %s, which it does not have", e[1], strings.Join(subs, " "), f)
			}
		}
		checked++
	}
	if checked < 3 {
		t.Errorf("checked %d commands in docker-compose.yml, want the schema, collector and analyzer ones", checked)
	}
}
