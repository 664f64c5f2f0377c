#!/usr/bin/env bash
# Builds the x86_64-unknown-linux-musl images from Debian packages and sources, for machines that
# cannot pull an Alpine image (base-images/alpine/ is the recipe where one can be pulled):
#
#   release-oci/builder:musl   a Debian bookworm rootfs (gcc/make, git, busybox-static, tini-static,
#                              CA certificates, tzdata, musl-tools) with Erlang/OTP built for musl
#                              in /usr/local/lib/erlang (its ERTS and NIFs use musl's loader,
#                              OpenSSL is linked statically into crypto, ncurses' terminal library
#                              with the common terminals built in statically into beam.smp, for
#                              `bin/NAME remote`), Debian's Elixir, rebar3,
#                              CC=musl-gcc for NIFs and a static zlib for musl (-lz)
#   release-oci/runtime:musl   musl's loader, a static busybox and CA certificates (the base for
#                              --from-release and `--base release-oci/runtime:musl`)
#
#   base-images/musl/build.sh          # build what is missing or out of date
#   FORCE=1 base-images/musl/build.sh  # rebuild
#
# Erlang/OTP is the version of Debian's erlang source package (the one Debian's Elixir is built
# for), with Debian's patches; OpenSSL and ncurses are Debian's openssl and ncurses sources. All are
# compiled with Debian's musl-gcc on this machine, the rootfs comes from debootstrap. See docs/musl.md for the choices.
# An image whose recipe label equals the hash of this directory's files is left alone.
set -euo pipefail

SUITE=${SUITE:-bookworm}
BUILDER_TAG=${BUILDER_TAG:-release-oci/builder:musl}
RUNTIME_TAG=${RUNTIME_TAG:-release-oci/runtime:musl}
WORK=${WORK:-/var/cache/release-oci/musl}
JOBS=${JOBS:-2}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=base-images/lib.sh
source "$HERE/../lib.sh"
LOGS=$WORK/logs
PREFIX=/usr/local
# Applications of Erlang/OTP left out: GUIs, Java, ODBC, and protocol stacks few releases use
# (they cost build time). What Elixir, Mix, Hex and common releases use is kept.
OTP_WITHOUT="wx odbc jinterface megaco diameter snmp observer debugger et reltool common_test dialyzer erl_docgen"

log() { printf '[base-musl] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
RUN_LOGS=$LOGS

recipe() { (cd "$HERE" && cat build.sh ../lib.sh && printf '%s %s\n' "$SUITE" "$OTP_WITHOUT") | sha256sum | cut -c1-16; }
RECIPE=$(recipe)
have_image() {
  local found
  [ -z "${FORCE:-}" ] || return 1
  found=$(docker image inspect -f '{{ index .Config.Labels "org.release-oci.recipe" }}' "$1" 2>/dev/null) || return 1
  [ "$found" = "$RECIPE" ]
}

[ "$(id -u)" = 0 ] || die "run as root (installs packages, runs debootstrap and chroot)"
[ "$(dpkg --print-architecture)" = amd64 ] || die "this recipe builds x86_64 images on an amd64 machine"
docker version >/dev/null 2>&1 || die "no Docker engine answers: run scripts/setup.sh first"
mkdir -p "$WORK"
exec 9>"$WORK/.lock"
flock 9
if have_image "$BUILDER_TAG" && have_image "$RUNTIME_TAG"; then
  log "$BUILDER_TAG and $RUNTIME_TAG are up to date"
  exit 0
fi
TOTAL_START=$SECONDS
BUILD=$WORK/build
rm -rf "$BUILD" "$LOGS"
mkdir -p "$BUILD" "$LOGS"

# Host tools: musl-gcc, dpkg-source, debootstrap, a C toolchain, the kernel's headers, perl
# (OpenSSL's Configure), tic and infocmp (ncurses' built-in terminal descriptions).
install_missing musl-tools musl-dev dpkg-dev debootstrap gcc make linux-libc-dev perl xz-utils ncurses-bin

# A private apt state: this machine's Debian sources as deb and deb-src lines, for `apt-get
# source` and `apt-get download` without touching the system's apt.
private_apt "$BUILD/apt" || die "cannot make a private apt state in $BUILD/apt"
run apt-update "${APT[@]}" update

# Sources: Erlang/OTP as Debian ships it (its version is the one Debian's elixir is built for),
# zlib, OpenSSL and ncurses; each falls back to the suite's own version when an update's files are
# missing.
SRC=$BUILD/src
mkdir -p "$SRC"
get_sources() {
  cd "$SRC"
  fetch_source "$SUITE" erlang zlib openssl ncurses
  dpkg-source -x erlang_*.dsc otp
  dpkg-source -x zlib_*.dsc zlib
  dpkg-source -x ncurses_*.dsc ncurses
  mkdir openssl
  tar -xzf openssl_*.orig.tar.gz -C openssl --strip-components=1
}
run sources get_sources
OTP_VERSION=$(cat "$SRC/otp/OTP_VERSION")
log "Erlang/OTP $OTP_VERSION, $(basename "$SRC"/openssl_*.orig.tar.gz .orig.tar.gz)"

# musl's headers lack the kernel's (linux/, asm/, asm-generic/): Debian's come after them.
KHEADERS=$BUILD/kheaders
mkdir -p "$KHEADERS"
ln -s /usr/include/linux /usr/include/asm-generic /usr/include/x86_64-linux-gnu/asm "$KHEADERS/"
MUSL_CC="musl-gcc -idirafter $KHEADERS"

# OpenSSL, static and position independent (it ends up inside the crypto NIF).
SSL=$BUILD/openssl-musl
build_openssl() {
  cd "$SRC/openssl"
  CC=$MUSL_CC ./Configure linux-x86_64 no-shared no-async no-afalgeng no-tests no-ui-console -fPIC \
    --prefix="$SSL" --libdir=lib --openssldir=/etc/ssl
  make -j"$JOBS" build_libs
  make install_dev
}
run openssl build_openssl

# zlib for NIFs that link it (`musl-gcc ... -lz`): static and position independent, where
# musl-gcc looks for headers and libraries.
ZLIB_ROOT=$BUILD/zlib-root
build_zlib() {
  cd "$SRC/zlib"
  CC=musl-gcc CFLAGS="-O2 -fPIC" ./configure --static --prefix=/usr --libdir=/usr/lib/x86_64-linux-musl \
    --includedir=/usr/include/x86_64-linux-musl
  make -j"$JOBS" libz.a
  make install DESTDIR="$ZLIB_ROOT"
  rm -rf "${ZLIB_ROOT:?}/usr/share"
}
run zlib build_zlib

# ncurses' terminal library (libtinfo) for the ERTS's line editor (the tty_sl driver): without it
# IEx falls back to its limited shell and `bin/NAME remote` cannot reach the node. Static and
# position independent, linked into beam.smp, with the descriptions of the common terminals
# compiled in (--with-fallbacks; tic and infocmp of this machine make them from ncurses' own
# terminfo.src), so the image needs no terminfo files: TERM must name one of them (`docker exec
# -it` sets xterm). Terminfo directories, when an image has them, are looked up first.
NCURSES=$BUILD/ncurses-musl
NCURSES_TERMINALS=xterm,xterm-256color,xterm-color,vt100,vt220,linux,screen,screen-256color,tmux,tmux-256color,rxvt-unicode,ansi
build_ncurses() {
  cd "$SRC/ncurses"
  CC=$MUSL_CC CFLAGS="-O2 -fPIC" ./configure --prefix="$NCURSES" --without-shared --with-normal \
    --without-debug --without-profile --without-cxx --without-cxx-binding --without-ada \
    --without-manpages --without-progs --without-tests --disable-db-install --with-termlib \
    --with-fallbacks="$NCURSES_TERMINALS" --with-terminfo-dirs=/etc/terminfo:/lib/terminfo:/usr/share/terminfo \
    --with-default-terminfo-dir=/usr/share/terminfo
  make -j"$JOBS" -C include
  make -j"$JOBS" -C ncurses libs
  make -C include install
  make -C ncurses install.libs
  [ -f "$NCURSES/lib/libtinfo.a" ] || { echo "no $NCURSES/lib/libtinfo.a"; return 1; }
}
run ncurses build_ncurses

# Erlang/OTP: the interpreter (--disable-jit: the JIT is C++, and Debian has no C++ library for
# musl), termcap from the static libtinfo above (configure finds -ltinfo in LDFLAGS' directory;
# --with-termcap makes a missing one an error), OpenSSL linked statically into crypto.
OTP_ROOT=$BUILD/otp-root
build_otp() {
  local without=()
  for app in $OTP_WITHOUT; do without+=("--without-$app"); done
  cd "$SRC/otp"
  export ERL_TOP=$PWD
  CC=$MUSL_CC CXX=false LDFLAGS="-L$NCURSES/lib" ./configure --prefix="$PREFIX" --disable-jit --with-termcap \
    --without-javac --disable-sctp --disable-dynamic-ssl-lib --with-ssl="$SSL" "${without[@]}"
  grep -qs '^#define HAVE_TERMCAP 1' erts/*/config.h ||
    { echo "configure did not take the termcap library (HAVE_TERMCAP)"; return 1; }
  make -j"$JOBS"
  make install DESTDIR="$OTP_ROOT"
}
run otp build_otp

is_elf() { [ "$(head -c4 "$1" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; }
# Without debugging symbols (as Debian installs them): beam.smp goes from about 18 MB to 4 MB, and
# every release built with include_erts carries it.
strip_tree() {
  local f
  while IFS= read -r -d '' f; do
    if is_elf "$f"; then strip --strip-unneeded "$f"; fi
  done < <(find "$1" -type f -print0)
}
run strip strip_tree "$OTP_ROOT"

# Nothing of the installed tree may use glibc.
check_musl_tree() {
  local f bad=
  while IFS= read -r -d '' f; do
    is_elf "$f" || continue
    if LC_ALL=C grep -q -e 'libc\.so\.6' -e 'ld-linux' "$f"; then bad="$bad ${f#"$1"}"; fi
  done < <(find "$1" -type f -print0)
  [ -z "$bad" ] || die "these files of $1 use glibc:$bad"
}
check_musl_tree "$OTP_ROOT"

# The builder's rootfs.
ROOTFS=$BUILD/rootfs
BUILDER_PACKAGES="musl,musl-dev,musl-tools,gcc,make,git,ca-certificates,tini,busybox-static,tzdata"
bootstrap() {
  local url
  debootstrap --variant=minbase --include="$BUILDER_PACKAGES" "$SUITE" "$ROOTFS"
  url=$(awk '$1 == "deb" { print $2; exit }' "$ROOTFS/etc/apt/sources.list")
  [ -n "$url" ] || { echo "no archive in $ROOTFS/etc/apt/sources.list"; return 1; }
  printf 'deb %s %s-updates main\ndeb %s-security %s-security main\n' \
    "$url" "$SUITE" "${url%/}" "$SUITE" >>"$ROOTFS/etc/apt/sources.list"
  chroot "$ROOTFS" apt-get update -q
  chroot "$ROOTFS" env DEBIAN_FRONTEND=noninteractive apt-get -y -q \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold upgrade
  chroot "$ROOTFS" apt-get clean
}
run debootstrap bootstrap

# Erlang/OTP, Elixir (Debian's: .beam files and sh scripts, they run on any ERTS of the version it
# was built for) and rebar3 (one escript) into the rootfs.
add_beam() {
  local pkgs=$BUILD/debs
  mkdir -p "$pkgs"
  cp -a "$OTP_ROOT/." "$ROOTFS/"
  cp -a "$ZLIB_ROOT/." "$ROOTFS/"
  (cd "$pkgs" && "${APT[@]}" download elixir rebar3)
  dpkg-deb -x "$pkgs"/elixir_*.deb "$ROOTFS"
  dpkg-deb -x "$pkgs"/rebar3_*.deb "$pkgs/rebar3"
  install -m 0755 "$pkgs/rebar3/usr/bin/rebar3" "$ROOTFS$PREFIX/bin/rebar3"
  # The tree is root's, whoever ran the build.
  chown -R 0:0 "$ROOTFS$PREFIX"
}
run beam add_beam

trim_rootfs "$ROOTFS"

LOADER=/lib/ld-musl-x86_64.so.1
[ -e "$ROOTFS$LOADER" ] || die "musl's loader $LOADER is missing from the rootfs"
[ -x "$ROOTFS/usr/bin/tini-static" ] || die "tini-static is missing from the rootfs"

PATH_ENV="ENV PATH=$PREFIX/sbin:$PREFIX/bin:/usr/sbin:/usr/bin:/sbin:/bin"
import() {
  local dir=$1 tag=$2; shift 2
  tar --numeric-owner --sort=name -C "$dir" -c . | docker import "$@" - "$tag" >/dev/null
}
run import-builder import "$ROOTFS" "$BUILDER_TAG" \
  -c "$PATH_ENV" -c 'ENV LANG=C.UTF-8' -c 'ENV MIX_HOME=/root/.mix' -c 'ENV CC=musl-gcc' \
  -c 'WORKDIR /build' -c 'CMD ["/bin/sh"]' \
  -c "LABEL org.release-oci.recipe=$RECIPE" -c "LABEL org.release-oci.otp-version=$OTP_VERSION"

# The runtime: musl's loader (which is its libc), busybox with its applets, CA certificates.
RUNTIME=$BUILD/runtime
make_runtime() {
  local applet
  mkdir -p "$RUNTIME"/{bin,lib,etc/ssl/certs,tmp,root}
  cp -L "$ROOTFS$LOADER" "$RUNTIME$LOADER"
  cp -L "$ROOTFS/bin/busybox" "$RUNTIME/bin/busybox"
  for applet in $("$RUNTIME/bin/busybox" --list); do
    [ -e "$RUNTIME/bin/$applet" ] || ln -s busybox "$RUNTIME/bin/$applet"
  done
  cp -L "$ROOTFS/etc/ssl/certs/ca-certificates.crt" "$RUNTIME/etc/ssl/certs/"
  ln -s certs/ca-certificates.crt "$RUNTIME/etc/ssl/cert.pem"
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$RUNTIME/etc/passwd"
  printf 'root:x:0:\n' >"$RUNTIME/etc/group"
  printf 'hosts: files dns\n' >"$RUNTIME/etc/nsswitch.conf"
  chmod 1777 "$RUNTIME/tmp"
  chmod 0700 "$RUNTIME/root"
}
run runtime-rootfs make_runtime
run import-runtime import "$RUNTIME" "$RUNTIME_TAG" \
  -c 'ENV PATH=/usr/local/bin:/usr/bin:/bin' -c 'ENV LANG=C.UTF-8' \
  -c 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' -c 'CMD ["/bin/sh"]' \
  -c "LABEL org.release-oci.recipe=$RECIPE"

# The images work: the ERTS is musl's, crypto has OpenSSL, Elixir and Mix run. (Expanded in the
# container, not here.)
# shellcheck disable=SC2016
SMOKE='
erts=$(ls -d /usr/local/lib/erlang/erts-*)
'"$LOADER"' --list "$erts/bin/beam.smp" | grep -q "libc.so => '"$LOADER"'" || { echo "beam.smp does not use musl"; exit 1; }
erl -noshell -eval "io:format(\"~s~n\", [binary:encode_hex(crypto:hash(sha256, <<\"x\">>))]), halt()."
elixir -e "IO.puts(System.version())"
mix --version >/dev/null
rebar3 version >/dev/null
musl-gcc -x c -o /tmp/z - -lz <<EOF
#include <zlib.h>
int main(void) { return zlibVersion()[0] == 0; }
EOF
/tmp/z
'
run smoke-builder docker run --rm "$BUILDER_TAG" sh -euc "$SMOKE"
# The line editor's driver opens on a terminal (a TERM of the built-in list, no terminfo files).
run smoke-tty docker run --rm -t -e TERM=xterm "$BUILDER_TAG" erl -noshell -eval \
  'P = open_port({spawn, "tty_sl -c -e"}, [eof]), port_close(P), io:format("tty_sl opens~n"), halt().'
run smoke-runtime docker run --rm "$RUNTIME_TAG" sh -c 'test -x /lib/ld-musl-x86_64.so.1 && ls /etc/ssl/cert.pem'
log "sha256(x) in $BUILDER_TAG: $(sed -n 1p "$LOGS/smoke-builder.log")"

rm -rf "$BUILD"
log "done in $((SECONDS - TOTAL_START))s: $BUILDER_TAG $RUNTIME_TAG (logs: $LOGS)"
