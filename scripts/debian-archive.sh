# shellcheck shell=bash
# scripts/debian-archive.sh: sourced by the set-up scripts that fetch Debian packages from a suite
# the machine's apt does not list (scripts/setup-supply-chain.sh: trixie's cosign;
# scripts/setup-emulation.sh: bookworm-backports' qemu-user). No archive host is named here: the
# archive is the one this machine's apt already uses.

# debian_archive_uri: prints the URI of this machine's main Debian archive: the first `URIs:` of a
# deb822 stanza (or `deb` line) whose suites are not the security archive's. Fails when there is
# none.
debian_archive_uri() {
  local f uri
  shopt -s nullglob
  for f in /etc/apt/sources.list.d/*.sources; do
    uri=$(awk '
      /^$/ { if (uris != "" && suites !~ /-security/ && types ~ /deb/) { print uris; exit } uris = ""; suites = ""; types = "" }
      /^URIs:/ { uris = $2 } /^Suites:/ { suites = $0 } /^Types:/ { types = $0 }
      END { if (uris != "" && suites !~ /-security/) print uris }' "$f" | head -n 1)
    if [ -n "$uri" ]; then shopt -u nullglob; printf '%s\n' "$uri"; return 0; fi
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    uri=$(awk '$1 == "deb" && $3 !~ /-security/ { for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) { print $i; exit } }' "$f")
    if [ -n "$uri" ]; then shopt -u nullglob; printf '%s\n' "$uri"; return 0; fi
  done
  shopt -u nullglob
  return 1
}
