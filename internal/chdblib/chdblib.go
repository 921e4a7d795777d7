// Package chdblib finds libchdb.so, the embedded ClickHouse engine, before chdb-go loads it.
//
// chdb-go opens the library in a package init function and panics when it is absent, before main
// runs. This package is initialized first: its import path sorts before that of chdb-go's loader's
// own dependencies (github.com/ebitengine/purego) and it imports only os, which that loader imports
// too, so the Go initialization order (spec: "Package initialization") runs it earlier. It points
// CHDB_LIB_PATH at the copy installed by scripts/setup.sh, or, when there is none, prints one line
// that says how to install it and exits with status 3.
//
// Import it (for its side effect) from every package that imports chdb-go.
package chdblib

import "os"

// Version is the pinned version of the npm package @chdb/lib-linux-x64-gnu that setup installs.
const Version = "26.5.3"

// Path is the libchdb.so that will be loaded, set during initialization.
var Path = locate()

// CachePath is where scripts/setup.sh installs libchdb.so for the current user.
func CachePath() string {
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		cache = os.Getenv("HOME") + "/.cache"
	}
	return cache + "/dnsloss/chdb/" + Version + "/libchdb.so"
}

func exists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}

func locate() string {
	if p := os.Getenv("CHDB_LIB_PATH"); p != "" {
		if exists(p) {
			return p
		}
		fail("CHDB_LIB_PATH=" + p + " does not exist")
	}
	for _, p := range []string{CachePath(), "/usr/local/lib/libchdb.so"} {
		if exists(p) {
			os.Setenv("CHDB_LIB_PATH", p)
			return p
		}
	}
	fail("libchdb.so not found in " + CachePath() + " or /usr/local/lib")
	return ""
}

func fail(why string) {
	os.Stderr.WriteString("dnsloss: cannot load the embedded ClickHouse engine: " + why +
		".\nInstall it with `make setup` (runs scripts/setup.sh: downloads @chdb/lib-linux-x64-gnu@" + Version +
		" from npm), or set CHDB_LIB_PATH to a libchdb.so, or use --clickhouse URL with a binary built with -tags nochdb.\n")
	os.Exit(3)
}
