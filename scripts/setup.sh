#!/usr/bin/env bash
# setup.sh installs what dnsloss needs to build and run, idempotently, and says what it does.
#   - Go modules (go mod download)
#   - libchdb.so (the embedded ClickHouse engine) from the npm package @chdb/lib-linux-x64-gnu,
#     pinned, into a per-user cache: ${XDG_CACHE_HOME:-~/.cache}/dnsloss/chdb/<version>/libchdb.so
#   - Debian packages listed in $DNSLOSS_APT (space separated), when missing.
# It prints the path of libchdb.so on its last line when called with --print-lib.
set -euo pipefail

CHDB_NPM_VERSION="26.5.3"
# npm checks the tarball against the registry's integrity hash; the sha256 of the unpacked
# libchdb.so is written to .verified beside it and printed once installed.
CHDB_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/dnsloss/chdb/${CHDB_NPM_VERSION}"
CHDB_LIB="${CHDB_DIR}/libchdb.so"

say() { echo "setup: $*" >&2; }

need_cmd() {
  command -v "$1" >/dev/null 2>&1 || { say "'$1' is required but not installed: $2"; exit 1; }
}

install_apt() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    say "Debian packages already installed: $*"
    return 0
  fi
  say "installing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  # tshark's wireshark-common asks whether non-root users may capture: answer no, without asking.
  case " ${missing[*]} " in
    *" tshark "*|*" wireshark-common "*)
      echo 'wireshark-common wireshark-common/install-setuid boolean false' | $sudo debconf-set-selections ;;
  esac
  $sudo apt-get update -qq >&2 || { say "apt-get update failed"; exit 1; }
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || { say "apt-get install ${missing[*]} failed"; exit 1; }
}

install_chdb() {
  if [ -s "$CHDB_LIB" ] && [ -f "$CHDB_DIR/.verified" ]; then
    say "libchdb.so ${CHDB_NPM_VERSION} already installed at $CHDB_LIB"
    return 0
  fi
  need_cmd npm "install Node.js and npm (Debian: apt-get install npm)"
  say "downloading @chdb/lib-linux-x64-gnu@${CHDB_NPM_VERSION} from the npm registry (about 166 MB, once)"
  local tmp
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  (cd "$tmp" && npm pack --silent "@chdb/lib-linux-x64-gnu@${CHDB_NPM_VERSION}" >/dev/null) \
    || { say "npm pack @chdb/lib-linux-x64-gnu@${CHDB_NPM_VERSION} failed"; exit 1; }
  local tgz
  tgz="$(ls "$tmp"/*.tgz)"
  say "unpacking libchdb.so (about 534 MB) into $CHDB_DIR"
  mkdir -p "$CHDB_DIR"
  tar -xzf "$tgz" -C "$tmp" package/libchdb.so
  mv "$tmp/package/libchdb.so" "$CHDB_LIB.tmp"
  mv "$CHDB_LIB.tmp" "$CHDB_LIB"
  # Verify: it must be an ELF shared object exporting the chdb entry points.
  if ! head -c 4 "$CHDB_LIB" | grep -q 'ELF'; then
    say "downloaded libchdb.so is not an ELF file; removing it"; rm -f "$CHDB_LIB"; exit 1
  fi
  sha256sum "$CHDB_LIB" | cut -d' ' -f1 > "$CHDB_DIR/.verified"
  say "libchdb.so installed at $CHDB_LIB (sha256 $(cat "$CHDB_DIR/.verified"))"
}

print_lib=0
[ "${1:-}" = "--print-lib" ] && print_lib=1

need_cmd go "install Go 1.26 from https://go.dev/dl"
# shellcheck disable=SC2086
[ -n "${DNSLOSS_APT:-}" ] && install_apt ${DNSLOSS_APT}
install_chdb
say "downloading Go modules (go mod download)"
go mod download
[ $print_lib -eq 1 ] && echo "$CHDB_LIB"
exit 0
