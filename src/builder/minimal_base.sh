
# --- minimal_base.sh: appended to assemble.sh (see builder/mod.rs); runs when MINIMAL_BASE=1 ---
#
# Gathers from this machine (the builder container, or the host for --builder host) into
# $OUT/base/rootfs the files the release needs at run time that are not part of it, at the same
# paths as here; every symlink met on the way (a directory like /lib -> usr/lib, or a SONAME link
# like libz.so.1 -> libz.so.1.2.13) is copied as a link and followed:
#   - the dynamic loader and the libraries of every ELF file of the release (ERTS programs, NIFs,
#     port programs), as this machine's ldd resolves them (DT_NEEDED, RUNPATH/RPATH, $ORIGIN,
#     ld.so.cache or musl's path; ldd is the loader itself, and musl files go to musl's loader);
#   - busybox (BUSYBOX, or the first one found) and links for the applets the start scripts call
#     (bin/NAME, releases/VSN/elixir and iex, erts-VSN/bin/erl, the cookie hook) and a few an
#     operator needs in `docker exec`;
#   - the CA certificate bundle; the C.UTF-8 locale (glibc); OpenSSL's provider modules when
#     libcrypto is needed (it dlopen()s them);
#   - the time zone database when TZDATA=1.
# $OUT/base/why says why, one tab-separated line per reason:
#   need  CONSUMER  PATH    the ELF file CONSUMER (relative to the release, or an absolute path of
#                           a file gathered here) needs PATH (as ldd resolved it here)
#   add   PATH  REASON      PATH (a file, link or directory tree) is there for REASON
# release-oci turns this into the one base layer (src/minimal/).
#
# The cache (src/minimal/cache.rs, docs/minimal-base.md): $OUT/base/elf lists the ELF files, one
# `SHA256  PATH` line each (sha256sum's format; PATH relative to $OUT/rel, in C-locale order).
# MINIMAL_BASE_KNOWN holds the sha256 of such listings for which release-oci already has this
# builder image's base (same settings); when this release's listing is one of them, nothing is
# gathered: $OUT/base/reused says which, and release-oci reuses the base it made then.

if [ "${MINIMAL_BASE:-}" = 1 ]; then
  BASE_OUT=$OUT/base
  ROOT=$BASE_OUT/rootfs
  WHY=$BASE_OUT/why
  rm -rf "$BASE_OUT"
  mkdir -p "$BASE_OUT"

  is_elf() { [ "$(od -An -tx1 -N4 "$1" 2>/dev/null | tr -d ' \n')" = 7f454c46 ]; }

  # Every ELF file of the release: executables and shared objects (*.so, *.so.N) that start with
  # ELF's magic (so have four bytes at least), relative to $OUT/rel. The first four bytes of all
  # of them are read in one pass (od per file cost 5 ms each); one od per file when that fails.
  (cd "$OUT/rel" && find . -type f -size +3c \( -perm -u+x -o -name '*.so' -o -name '*.so.*' \)) |
    sed 's|^\./||' | LC_ALL=C sort >"$BASE_OUT/candidates"
  if (cd "$OUT/rel" && tr '\n' '\0' <"$BASE_OUT/candidates" | xargs -0 -r head -q -c 4 --) 2>/dev/null |
    od -An -v -tx1 -w4 2>/dev/null | tr -d ' ' >"$BASE_OUT/magic" &&
    [ "$(wc -l <"$BASE_OUT/magic")" = "$(wc -l <"$BASE_OUT/candidates")" ]; then
    paste "$BASE_OUT/magic" "$BASE_OUT/candidates" | awk 'substr($0, 1, 9) == "7f454c46\t" {print substr($0, 10)}' >"$BASE_OUT/elf-files"
  else
    : >"$BASE_OUT/elf-files"
    while IFS= read -r f; do
      if is_elf "$OUT/rel/$f"; then printf '%s\n' "$f" >>"$BASE_OUT/elf-files"; fi
    done <"$BASE_OUT/candidates"
  fi
  rm -f "$BASE_OUT/candidates" "$BASE_OUT/magic"

  # Their listing, and whether release-oci has the base of exactly these files. No sha256sum, or
  # a name sha256sum escapes (a backslash or a newline in it): no listing, the base is gathered.
  base_known=
  if command -v sha256sum >/dev/null 2>&1 &&
    (cd "$OUT/rel" && tr '\n' '\0' <"$BASE_OUT/elf-files" | xargs -0 -r sha256sum --) >"$BASE_OUT/elf" &&
    ! grep -q '^\\' "$BASE_OUT/elf"; then
    elf_sum=$(sha256sum <"$BASE_OUT/elf")
    elf_sum=${elf_sum%% *}
    case " ${MINIMAL_BASE_KNOWN:-} " in
      *" $elf_sum "*) base_known=$elf_sum ;;
    esac
  else
    rm -f "$BASE_OUT/elf"
  fi
fi

if [ "${MINIMAL_BASE:-}" = 1 ] && [ -n "$base_known" ]; then
  printf '%s\n' "$base_known" >"$BASE_OUT/reused"
  rm -f "$BASE_OUT/elf-files"
  say "minimal base: reused, not gathered (release-oci has the base of these $(wc -l <"$BASE_OUT/elf" | tr -d ' ') ELF files from an earlier build: sha256:$base_known)"
elif [ "${MINIMAL_BASE:-}" = 1 ]; then
  mkdir -p "$ROOT"
  : >"$WHY"
  say "minimal base: gathering the files the release needs from this machine"

  # Applets the start scripts run, and a few for an operator (no network tools).
  SCRIPT_APPLETS="sh awk basename cat cut date dd dirname grep id mkdir mv od readlink sed tr"
  OPERATOR_APPLETS="cp echo env false find head hostname kill ln ls printf ps pwd rm sleep sort stat tail test timeout touch true uname wc which whoami xargs ["

  why() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$WHY"; }

  # copy_path PATH: copies PATH (absolute) from this machine into $ROOT at the same place. Each
  # symlink on the way is copied as a link and followed; directories are created; a directory at
  # the end is copied whole (links inside it kept as links). Sets CP_REAL to the path with every
  # link resolved. Writes into $ROOT only at resolved paths, so never through a link in $ROOT.
  CP_LINKS=
  copy_path() {
    cp_path=$1
    cp_hops=0
    while :; do
      cp_dir=
      cp_rest=${cp_path#/}
      cp_again=
      while [ -n "$cp_rest" ]; do
        case $cp_rest in
          */*) cp_comp=${cp_rest%%/*}; cp_rest=${cp_rest#*/} ;;
          *) cp_comp=$cp_rest; cp_rest= ;;
        esac
        case $cp_comp in
          '' | .) continue ;;
          ..) cp_dir=${cp_dir%/*}; continue ;;
        esac
        cp_cur=$cp_dir/$cp_comp
        if [ -L "$cp_cur" ]; then
          # Each link is read once (a process costs much under emulation): CP_LINKS remembers.
          case $CP_LINKS in
            *"|$cp_cur>"*) cp_target=${CP_LINKS#*"|$cp_cur>"}; cp_target=${cp_target%%"|"*} ;;
            *) cp_target=$(readlink "$cp_cur"); CP_LINKS="$CP_LINKS|$cp_cur>$cp_target|" ;;
          esac
          if [ ! -L "$ROOT$cp_cur" ] && [ ! -e "$ROOT$cp_cur" ]; then
            [ -d "$ROOT$cp_dir" ] || mkdir -p "$ROOT$cp_dir"
            ln -s "$cp_target" "$ROOT$cp_cur"
          fi
          case $cp_target in
            /*) cp_path=$cp_target ;;
            *) cp_path=$cp_dir/$cp_target ;;
          esac
          cp_path=$cp_path${cp_rest:+/$cp_rest}
          cp_again=1
          break
        elif [ -d "$cp_cur" ]; then
          if [ -z "$cp_rest" ]; then
            mkdir -p "$ROOT$cp_cur"
            cp -pRP "$cp_cur/." "$ROOT$cp_cur/" || die "cannot copy $cp_cur into the minimal base"
          fi
          cp_dir=$cp_cur
        elif [ -f "$cp_cur" ] && [ -z "$cp_rest" ]; then
          if [ ! -e "$ROOT$cp_cur" ]; then
            [ -d "$ROOT$cp_dir" ] || mkdir -p "$ROOT$cp_dir"
            cp -p "$cp_cur" "$ROOT$cp_cur" || die "cannot copy $cp_cur into the minimal base"
          fi
          cp_dir=$cp_cur
        else
          die "minimal base: $1 does not exist here ($cp_cur is missing or not a directory)"
        fi
      done
      if [ -z "$cp_again" ]; then
        CP_REAL=${cp_dir:-/}
        return 0
      fi
      cp_hops=$((cp_hops + 1))
      [ "$cp_hops" -le 40 ] || die "minimal base: too many symlinks resolving $1"
    done
  }

  # musl's loader lists what a program needs when asked with --list (it is musl's ldd). On a
  # glibc system with musl added (the Debian-based musl builder) `ldd` is glibc's, which calls a
  # musl program "not a dynamic executable": the ELF files that name no glibc file go to musl's.
  musl_loader=
  for candidate in /lib/ld-musl-*.so.1; do
    if [ -e "$candidate" ]; then musl_loader=$candidate; break; fi
  done
  # glibc's ldd is a bash script that starts about five processes a file, which costs much under
  # emulation (qemu-user: ~0.8 s a file against ~0.2 s). When its RTLDLIST has exactly one loader
  # here, ldd's own steps are taken without it: `--verify`, then the trace with ldd's variables
  # (the same output and exit status; a loader answer ldd does not expect goes to ldd itself).
  glibc_loader=
  if ldd_script=$(command -v ldd 2>/dev/null) && [ -f "$ldd_script" ]; then
    for candidate in $(sed -n 's/^RTLDLIST=//p' "$ldd_script" | tr -d '"'); do
      [ -x "$candidate" ] || continue
      if [ -n "$glibc_loader" ]; then glibc_loader=; break; fi
      glibc_loader=$candidate
    done
  fi
  glibc_list() {
    gl_verify=$("$glibc_loader" --verify "$1") && gl_rc=0 || gl_rc=$?
    case $gl_rc in
      0 | 2) LD_TRACE_LOADED_OBJECTS=1 LD_WARN= LD_BIND_NOW= LD_LIBRARY_VERSION=$gl_verify LD_VERBOSE= "$glibc_loader" "$1" ;;
      1) printf '\tnot a dynamic executable\n' >&2; return 1 ;;
      *) ldd "$1" ;;
    esac
  }
  list_needs() {
    if [ -n "$musl_loader" ] && ! LC_ALL=C grep -q -e 'libc\.so\.6' -e 'ld-linux' "$1"; then
      "$musl_loader" --list "$1"
    elif [ -n "$glibc_loader" ]; then
      glibc_list "$1"
    else
      ldd "$1"
    fi
  }

  ND_COPIED=
  LDD_RUNS=0
  # needs CONSUMER FILE [GROUP]: records and copies what the ELF file FILE needs (nothing when
  # static). Files of one GROUP (elf_groups.pl) get the answer the first of them got: it is kept
  # in $BASE_OUT/answers/GROUP, the libraries one a line.
  needs() {
    nd_libs=$BASE_OUT/libs
    [ -z "${3:-}" ] || nd_libs=$BASE_OUT/answers/$3
    if [ -z "${3:-}" ] || [ ! -f "$nd_libs" ]; then
      ask_loader "$1" "$2" "$nd_libs"
      LDD_RUNS=$((LDD_RUNS + 1))
    fi
    # A library many files need is copied once (ND_COPIED), and recorded for each.
    while IFS= read -r nd_lib; do
      why need "$1" "$nd_lib"
      case $ND_COPIED in
        *"|$nd_lib|"*) ;;
        *) copy_path "$nd_lib"; ND_COPIED="$ND_COPIED|$nd_lib|" ;;
      esac
    done <"$nd_libs"
    [ -n "${3:-}" ] || rm -f "$nd_libs"
  }
  # ask_loader CONSUMER FILE LIBS: what ldd resolves for FILE, one path a line into LIBS (empty
  # when FILE is static); stops the build when a library is missing here.
  ask_loader() {
    nd_out=$(list_needs "$2" 2>&1) && nd_rc=0 || nd_rc=$?
    case $nd_out in
      *"not a dynamic executable"* | *"statically linked"* | *"Not a valid dynamic program"*) : >"$3"; return 0 ;;
    esac
    # glibc: "libz.so.1 => not found"; musl: "Error loading shared library libz.so.1: ...".
    # One awk: the libraries into LIBS, the missing ones on its output.
    nd_missing=$(printf '%s\n' "$nd_out" | awk -v libs="$3" '/=> not found/ {printf " %s", $1}
      /^Error loading shared library / {sub(/:$/, "", $5); printf " %s", $5}
      $2 == "=>" && $3 ~ /^\// {print $3 > libs; next} $1 ~ /^\// {print $1 > libs}
      END {printf "" > libs}')
    [ -z "$nd_missing" ] || die "minimal base: $1 needs libraries this machine does not have:$nd_missing (install them in the builder image)"
    if [ ! -s "$3" ] && [ "$nd_rc" != 0 ]; then
      die "minimal base: ldd $2 failed ($nd_rc): $nd_out"
    fi
  }

  command -v ldd >/dev/null 2>&1 || [ -n "$musl_loader" ] || die "minimal base: ldd is missing here (glibc: libc-bin, musl: musl-utils); it resolves the libraries the release needs"

  # Every ELF file of the release (listed above), ldd asked once a group of files that ask the
  # loader the same question: the groups release-oci made (ELF_GROUPS_GIVEN, a file, when it lists
  # exactly these files: src/minimal/elf_groups.rs, for a gathering under emulation), else
  # elf_groups.pl's (in ELF_GROUPS_PL; without perl, or when it fails, each file is its own group).
  mkdir -p "$BASE_OUT/answers"
  if [ -n "${ELF_GROUPS_GIVEN:-}" ] && [ -f "$ELF_GROUPS_GIVEN" ] &&
    [ "$(cut -f2- "$ELF_GROUPS_GIVEN")" = "$(cat "$BASE_OUT/elf-files")" ]; then
    cp "$ELF_GROUPS_GIVEN" "$BASE_OUT/elf-groups"
  elif [ -n "${ELF_GROUPS_PL:-}" ] && command -v perl >/dev/null 2>&1 &&
    perl -e "$ELF_GROUPS_PL" "$OUT/rel" "${musl_loader:+1}" "$BASE_OUT/elf-files" >"$BASE_OUT/elf-groups" &&
    [ "$(wc -l <"$BASE_OUT/elf-groups")" = "$(wc -l <"$BASE_OUT/elf-files")" ]; then
    :
  else
    awk '{printf "u%d\t%s\n", NR, $0}' "$BASE_OUT/elf-files" >"$BASE_OUT/elf-groups"
  fi
  elf_count=0
  tab=$(printf '\t')
  while IFS=$tab read -r group f; do
    elf_count=$((elf_count + 1))
    needs "$f" "$OUT/rel/$f" "$group"
  done <"$BASE_OUT/elf-groups"
  rm -rf "$BASE_OUT/elf-files" "$BASE_OUT/elf-groups" "$BASE_OUT/answers"
  say "minimal base: libraries of $elf_count ELF files (ldd run $LDD_RUNS times)"

  # busybox: the shell and utilities.
  busybox=
  for candidate in ${BUSYBOX:-} /bin/busybox.static /usr/bin/busybox.static /bin/busybox /usr/bin/busybox; do
    if [ -f "$candidate" ]; then busybox=$candidate; break; fi
  done
  [ -n "$busybox" ] || die "minimal base: no busybox here (looked for ${BUSYBOX:-} /bin/busybox.static /bin/busybox): install busybox-static (Debian) or busybox-static (Alpine) in the builder, or set BUSYBOX"
  copy_path "$busybox"
  busybox_real=$CP_REAL
  why add "$busybox" "busybox: the shell and utilities the start scripts call"
  needs "$busybox_real" "$busybox_real"
  bin_dir=${busybox_real%/*}
  busybox_name=${busybox_real##*/}
  applets=$("$busybox_real" --list) || die "minimal base: $busybox_real --list failed"
  # One applet name a line: split into words on purpose.
  # shellcheck disable=SC2086
  applets=" $(printf '%s ' $applets)"
  wanted_applets=
  for applet in $SCRIPT_APPLETS $OPERATOR_APPLETS; do
    case "$applets " in
      *" $applet "*) ;;
      *)
        case " $SCRIPT_APPLETS " in
          *" $applet "*) die "minimal base: $busybox has no $applet applet, which the start scripts need" ;;
        esac
        continue
        ;;
    esac
    wanted_applets="$wanted_applets $applet"
  done
  # One process for all the links when perl is here (one `ln` each costs much under emulation),
  # unless `ln` is native (NATIVE_TOOLS_ON: cross/native_tools.sh), where perl's start alone costs
  # 0.2 s under emulation. Applet names have no spaces: split into words on purpose.
  # shellcheck disable=SC2086
  if [ -z "${NATIVE_TOOLS_ON:-}" ] && command -v perl >/dev/null 2>&1; then
    perl -e 'my ($t, $d) = (shift, shift); for (@ARGV) { my $l = "$d/$_"; next if -e $l; symlink($t, $l) or die "cannot link $l: $!\n" }' \
      "$busybox_name" "$ROOT$bin_dir" $wanted_applets || die "minimal base: cannot link busybox's applets in $ROOT$bin_dir"
  else
    for applet in $wanted_applets; do
      [ -e "$ROOT$bin_dir/$applet" ] || ln -s "$busybox_name" "$ROOT$bin_dir/$applet"
    done
  fi
  for applet in $SCRIPT_APPLETS; do
    why add "$bin_dir/$applet" "busybox applet: the start scripts call $applet"
  done
  for applet in $OPERATOR_APPLETS; do
    [ ! -L "$ROOT$bin_dir/$applet" ] || why add "$bin_dir/$applet" "busybox applet: $applet for docker exec"
  done
  # #!/bin/sh must work wherever busybox lives.
  if [ ! -e "$ROOT/bin/sh" ] && [ ! -L "$ROOT/bin/sh" ]; then
    mkdir -p "$ROOT/bin"
    ln -s "$bin_dir/sh" "$ROOT/bin/sh"
    why add /bin/sh "the shell of #!/bin/sh scripts"
  fi

  # CA certificates (public_key:cacerts_get/0, OpenSSL's default file).
  ca=/etc/ssl/certs/ca-certificates.crt
  [ -e "$ca" ] || die "minimal base: no CA certificate bundle at $ca: install ca-certificates in the builder"
  copy_path "$ca"
  # build_user.sh added the CAs the build trusts (--build-ca, by default this machine's) to this
  # file, for the build only: the image gets the builder image's own file, which it kept aside.
  image_ca=/etc/ssl/release-oci-image-ca-certificates.crt
  if [ -f "$image_ca" ]; then
    cp -p "$image_ca" "$ROOT$CP_REAL" || die "cannot copy $image_ca into the minimal base"
  fi
  why add "$ca" "CA certificates for TLS clients"
  if [ ! -e "$ROOT/etc/ssl/cert.pem" ] && [ ! -L "$ROOT/etc/ssl/cert.pem" ]; then
    ln -s certs/ca-certificates.crt "$ROOT/etc/ssl/cert.pem"
  fi
  why add /etc/ssl/cert.pem "CA certificates where OpenSSL and Alpine look"

  # glibc's C.UTF-8 locale: without it LANG=C.UTF-8 falls back to C and the BEAM to latin1 file names.
  # Only for glibc: musl has C.UTF-8 built in.
  if [ -d /usr/lib/locale/C.utf8 ] &&
    awk -F '\t' '$1 == "need" && $3 ~ /\/libc\.so\.6$/ {found = 1} END {exit !found}' "$WHY"; then
    copy_path /usr/lib/locale/C.utf8
    why add /usr/lib/locale/C.utf8 "the C.UTF-8 locale (LANG=C.UTF-8: UTF-8 file names in the BEAM)"
  fi

  # OpenSSL 3 dlopen()s its provider modules (OTP's crypto loads the legacy one when present).
  # The terminal library reads terminal descriptions: without them `bin/NAME remote` falls back
  # to IEx's limited shell, which cannot connect to the node.
  # Library paths have no spaces.
  # shellcheck disable=SC2013
  for lib in $(awk -F '\t' '$1 == "need" {print $3}' "$WHY" | LC_ALL=C sort -u); do
    case ${lib##*/} in
      libtinfo.so.* | libncurses*.so.*)
        for dir in /etc/terminfo /lib/terminfo /usr/share/terminfo; do
          if [ -d "$dir" ] && [ ! -e "$ROOT$dir" ]; then
            copy_path "$dir"
            why add "$dir" "terminal descriptions for ${lib##*/} (the remote shell)"
          fi
        done
        ;;
      libcrypto.so.*)
        copy_path "$lib"
        modules=${CP_REAL%/*}/ossl-modules
        if [ -d "$modules" ]; then
          copy_path "$modules"
          why add "$modules" "OpenSSL provider modules (dlopen()ed by ${lib##*/})"
          for m in "$modules"/*.so; do
            [ -f "$m" ] && needs "$m" "$m"
          done
        fi
        ;;
    esac
  done

  if [ "${TZDATA:-}" = 1 ]; then
    [ -d /usr/share/zoneinfo ] || die "minimal base: --tzdata, but there is no /usr/share/zoneinfo here: install tzdata in the builder"
    copy_path /usr/share/zoneinfo
    # The leap-second variants are not used by TZ=Area/City.
    rm -rf "$ROOT$CP_REAL/right"
    why add /usr/share/zoneinfo "time zone database (--tzdata)"
  fi
  # The distribution packages the gathered files come from, for the SBOM (src/supply/builder_out.rs):
  # $BASE_OUT/packages has "PATH<TAB>PACKAGE<TAB>VERSION<TAB>ARCH" for each regular file of $ROOT
  # that a package of this machine's dpkg database lists, under its own path or, with merged /usr,
  # the other one (/lib/X and /usr/lib/X); links (busybox's applets, /bin/sh) are nobody's.
  # $BASE_OUT/distro: /etc/os-release's ID. No dpkg here (Alpine): no file.
  if [ -d /var/lib/dpkg/info ] && command -v dpkg-query >/dev/null 2>&1; then
    (cd "$ROOT" && find . -type f) | sed 's|^\.||' >"$BASE_OUT/files"
    # DPKG_INSTALLED: that list made before (cross/gather/wait_after.sh, while the release was built).
    if [ -n "${DPKG_INSTALLED:-}" ] && [ -f "$DPKG_INSTALLED" ]; then
      cp "$DPKG_INSTALLED" "$BASE_OUT/installed"
    else
      dpkg-query -W -f '${binary:Package}\t${Version}\t${Architecture}\n' >"$BASE_OUT/installed" ||
        die "minimal base: dpkg-query cannot list the installed packages"
    fi
    find /var/lib/dpkg/info -name '*.list' | LC_ALL=C sort >"$BASE_OUT/lists"
    # One list file a line, no spaces in dpkg's names: split into words on purpose.
    # shellcheck disable=SC2046
    LC_ALL=C awk -v files="$BASE_OUT/files" -v installed="$BASE_OUT/installed" '
      BEGIN {
        while ((getline l < files) > 0) want[l] = 1
        while ((getline l < installed) > 0) { split(l, f, "\t"); pkg[f[1]] = f[2] "\t" f[3] }
      }
      FNR == 1 { name = FILENAME; sub(/^.*\//, "", name); sub(/\.list$/, "", name) }
      {
        other = $0
        if ($0 ~ /^\/usr\/(bin|sbin|lib|lib32|lib64|libx32)\//) other = substr($0, 5)
        else if ($0 ~ /^\/(bin|sbin|lib|lib32|lib64|libx32)\//) other = "/usr" $0
        if (($0 in want) && !($0 in owner) && (name in pkg)) owner[$0] = name
        if ((other in want) && !(other in owner) && (name in pkg)) owner[other] = name
      }
      END { for (p in owner) printf "%s\t%s\t%s\n", p, owner[p], pkg[owner[p]] }
    ' $(cat "$BASE_OUT/lists") </dev/null | LC_ALL=C sort >"$BASE_OUT/packages"
    rm -f "$BASE_OUT/files" "$BASE_OUT/installed" "$BASE_OUT/lists"
    distro=$(sed -n 's/^ID=//p' /etc/os-release 2>/dev/null | tr -d '"')
    printf '%s\n' "${distro:-debian}" >"$BASE_OUT/distro"
    say "minimal base: files of $(cut -f2 "$BASE_OUT/packages" | LC_ALL=C sort -u | wc -l | tr -d ' ') ${distro:-debian} packages"
  fi
  say "minimal base: $(find "$ROOT" | wc -l | tr -d ' ') paths, $(du -sk "$ROOT" | cut -f1) KiB"
fi
