#!/usr/bin/env bash
# fuzz.sh DURATION: runs every Go fuzz target in the module for DURATION each, one after another
# (each with go's default of one fuzz worker per CPU).
set -euo pipefail
dur=${1:-10s}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
go list -f '{{.ImportPath}} {{.Dir}}' ./... | while read -r pkg dir; do
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "fuzz: $pkg $target for $dur"
    go test -run='^$' -fuzz="^${target}\$" -fuzztime="$dur" "$pkg" >"$log" 2>&1 || { cat "$log"; exit 1; }
  done
done
