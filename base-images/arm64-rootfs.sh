#!/usr/bin/env bash
# Makes the root filesystem of an arm64 base image on an amd64 machine without running dpkg, apt
# or maintainer scripts under emulation (debootstrap's second stage and apt-get upgrade under
# qemu-user took about an hour on 2 cores; this takes a minute or two). Called by build-local.sh
# for ARCH=arm64, as root:
#
#   base-images/arm64-rootfs.sh DIR PACKAGES     # PACKAGES: comma-separated, as for debootstrap
#
# 1. mmdebstrap --variant=extract resolves and downloads, with apt on the host, the packages of a
#    debootstrap minbase (Essential, Priority: required, apt) plus PACKAGES and their dependencies,
#    from SUITE, SUITE-updates and SUITE-security (the archive this machine's apt uses: the same
#    versions an apt-get upgrade would give) and unpacks them into DIR, merged /usr.
# 2. The dpkg database is written from the .debs (status, info/*.list, md5sums, conffiles,
#    maintainer scripts, triggers), so dpkg/apt and image scanners see the packages installed.
# 3. What the maintainer scripts of a first installation leave behind is made on the host: users
#    and groups (base-passwd's masters, shadow, epmd), alternatives (update-alternatives --root),
#    base-files' files and directories, /etc/shells (the image's update-shells --root), the CA
#    store (ca-certificates.conf, /etc/ssl/certs links and bundle, `openssl rehash`), time zone
#    UTC, nsswitch.conf, dash's diversion of /bin/sh. Left out: systemd unit enablement and
#    sysvinit rc links (no init system runs in a container), man-page alternatives (the images
#    carry no man pages), debconf answers other than PAM's.
# 4. Under emulation, one chroot runs two short commands: ldconfig (ld.so.cache) and
#    pam-auth-update (/etc/pam.d/common-*), a few seconds.
# A package with maintainer scripts that nobody has looked at here stops the build (REVIEWED).
set -euo pipefail

dir=${1:?usage: arm64-rootfs.sh DIR PACKAGES}
packages=${2:?usage: arm64-rootfs.sh DIR PACKAGES}
dir=$(realpath -m "$dir")
SUITE=${SUITE:-bookworm}
ARCH=arm64

log() { printf '[arm64-rootfs] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (the rootfs holds files of other owners)"
for tool in mmdebstrap dpkg-deb update-alternatives dpkg-realpath openssl chroot; do
  command -v "$tool" >/dev/null || die "$tool is missing (scripts/setup-emulation.sh installs mmdebstrap)"
done

# Packages whose preinst/postinst were read and whose effects on a first installation are made
# below (or are upgrade-only, or only about systemd/sysvinit/man pages). A new one needs a look.
REVIEWED=(adduser apt base-files base-passwd bash ca-certificates coreutils cpp dash debconf
  debian-archive-keyring debianutils dpkg e2fsprogs erlang-base g++ gcc git init-system-helpers
  libc-bin libc6 libcrypt-dev libgcrypt20 libgssapi-krb5-2 libpam-modules libpam-runtime libpam0g
  login mawk openssh-client openssl passwd perl perl-base procps tar tzdata usr-is-merged util-linux
  util-linux-extra)
# openssh-client: its postinst adds the group _ssh and makes ssh-agent setgid _ssh (the agent's
# memory kept from other users); a builder runs no agent (--ssh forwards the caller's), so neither
# is made. Its preinst only moves conffiles on upgrades.

# --- 1. download and unpack ---------------------------------------------------------------------
# The archive of this machine's apt for SUITE, -updates and -security (main); without any, the
# defaults of mmdebstrap (which adds -updates and -security for a stable release).
sources=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' 'Created-By: Packages' |
  awk -v s="$SUITE" '$3 == "main" && ($2 == s || $2 == s "-updates" || $2 == s "-security") {
    print "deb " $1 " " $2 " main" }' | sort -u)
mirror_args=()
if grep -q " $SUITE main\$" <<<"$sources"; then
  printf '%s\n' "$sources" >"$dir.sources.list"
  mirror_args=("$dir.sources.list")
  log "sources: $(tr '\n' ';' <"$dir.sources.list")"
else
  log "sources: mmdebstrap's defaults (no $SUITE in this machine's apt sources)"
fi

rm -rf "$dir"
mkdir -p "$dir"
log "mmdebstrap --arch=$ARCH --variant=extract $SUITE (+ $packages)"
# Merged /usr as debootstrap makes it: the links exist before anything is unpacked (tar keeps
# directory symlinks). usr-is-merged by name, or apt would pick usrmerge for init-system-helpers.
mmdebstrap --mode=root --arch="$ARCH" --variant=extract --skip=cleanup/apt/cache \
  --include='?essential' --include='?priority(required)' --include="apt,usr-is-merged,$packages" \
  --setup-hook='for d in bin sbin lib; do ln -s "usr/$d" "$1/$d"; mkdir -p "$1/usr/$d"; done' \
  "$SUITE" "$dir" "${mirror_args[@]}"
rm -f "$dir.sources.list"
debs=("$dir"/var/cache/apt/archives/*.deb)
[ -f "${debs[0]}" ] || die "mmdebstrap left no packages in $dir/var/cache/apt/archives"
log "${#debs[@]} packages unpacked"
# One-line sources as debootstrap writes them (apt in the image reads both places).
for f in "$dir"/etc/apt/sources.list.d/0000*.list; do
  if [ -f "$f" ] && [ ! -e "$dir/etc/apt/sources.list" ]; then mv "$f" "$dir/etc/apt/sources.list"; fi
done

# --- 2. the dpkg database -----------------------------------------------------------------------
admin=$dir/var/lib/dpkg
mkdir -p "$admin/info" "$admin/triggers" "$admin/updates" "$admin/alternatives"
echo 1 >"$admin/info/format"
: >"$admin/status"
: >"$admin/available"
: >"$admin/triggers/Unincorp"
declare -A have=()
unreviewed=()
pkgmap=$(mktemp)
ctl=$(mktemp -d)
trap 'rm -rf "$ctl" "$pkgmap"' EXIT
for deb in "${debs[@]}"; do
  rm -rf "$ctl" && mkdir "$ctl"
  dpkg-deb --control "$deb" "$ctl"
  pkg=$(dpkg-deb --field "$deb" Package)
  name=$pkg
  [ "$(dpkg-deb --field "$deb" Multi-Arch)" != same ] || name=$pkg:$(dpkg-deb --field "$deb" Architecture)
  have[$pkg]=1
  if [ -e "$ctl/preinst" ] || [ -e "$ctl/postinst" ]; then
    [[ " ${REVIEWED[*]} " == *" $pkg "* ]] || unreviewed+=("$pkg")
  fi
  for f in "$ctl"/*; do
    [ "${f##*/}" = control ] || cp -p "$f" "$admin/info/$name.${f##*/}"
  done
  { awk '{ print } /^Package:/ { print "Status: install ok installed" }' "$ctl/control"
    if [ -s "$ctl/conffiles" ]; then
      echo "Conffiles:"
      while read -r -a words; do
        [ "${#words[@]}" -gt 0 ] || continue
        path=${words[-1]}
        if [ -f "$dir$path" ]; then sum=$(md5sum <"$dir$path" | cut -d' ' -f1); else sum=newconffile; fi
        echo " $path $sum${words[1]:+ ${words[0]}}"
      done <"$ctl/conffiles"
    fi
    echo; } >>"$admin/status"
  # Triggers this package is interested in: named ones in triggers/NAME, file ones in triggers/File.
  if [ -f "$ctl/triggers" ]; then
    while read -r kind trig _; do
      case $kind in
        interest|interest-await) who=$name ;;
        interest-noawait) who=$name/noawait ;;
        *) continue ;;
      esac
      case $trig in
        /*) echo "$trig $who" >>"$admin/triggers/File" ;;
        *) echo "$who" >>"$admin/triggers/$trig" ;;
      esac
    done < <(sed 's/#.*//' "$ctl/triggers")
  fi
  printf '%s\t%s\n' "$deb" "$name" >>"$pkgmap"
done
[ "${#unreviewed[@]}" -eq 0 ] ||
  die "maintainer scripts not reviewed in base-images/arm64-rootfs.sh: ${unreviewed[*]} (read them, add what they do on a first installation, then add them to REVIEWED)"

# info/PKG.list: every path of the package, as dpkg -L shows it ("/." for the root).
list_one() {
  set -o pipefail
  dpkg-deb --fsys-tarfile "$1" | tar -t --quoting-style=literal |
    sed -e 's|^\./|/|' -e 's|/$||' -e 's|^$|/.|' >"$3/info/$2.list"
}
export -f list_one
tr '\t' '\n' <"$pkgmap" | xargs -d '\n' -n 2 -P "$(nproc)" bash -c 'list_one "$1" "$2" "$0"' "$admin"
log "dpkg database: $(grep -c '^Package:' "$admin/status") packages"

# --- 3. what the maintainer scripts of a first installation leave ------------------------------
# base-passwd: /etc/passwd and /etc/group from the masters; passwd's `shadowconfig on` moves the
# passwords to /etc/shadow and /etc/gshadow (group shadow, 42, is in the master).
days=$(($(date +%s) / 86400))
bp=$dir/usr/share/base-passwd
awk -F: -v OFS=: '{ $2 = "x"; print }' "$bp/passwd.master" >"$dir/etc/passwd"
awk -F: -v OFS=: '{ $2 = "x"; print }' "$bp/group.master" >"$dir/etc/group"
awk -F: -v d="$days" '{ print $1 ":" $2 ":" d ":0:99999:7:::" }' "$bp/passwd.master" >"$dir/etc/shadow"
awk -F: '{ print $1 ":" $2 "::" }' "$bp/group.master" >"$dir/etc/gshadow"
# adduser --system --group NAME --home HOME: the first free uid and gid from 100.
add_system_user() {
  local user=$1 home=$2 uid=100 gid=100
  while cut -d: -f3 "$dir/etc/passwd" | grep -qx "$uid"; do uid=$((uid + 1)); done
  while cut -d: -f3 "$dir/etc/group" | grep -qx "$gid"; do gid=$((gid + 1)); done
  echo "$user:x:$gid:" >>"$dir/etc/group"
  echo "$user:!::" >>"$dir/etc/gshadow"
  echo "$user:x:$uid:$gid::$home:/usr/sbin/nologin" >>"$dir/etc/passwd"
  echo "$user:!:$days::::::" >>"$dir/etc/shadow"
}
[ -z "${have[erlang-base]:-}" ] || add_system_user epmd /run/epmd
# apt's download directory belongs to _apt (42), as apt leaves it.
if [ -d "$dir/var/cache/apt/archives/partial" ]; then
  chown 42:0 "$dir/var/cache/apt/archives/partial" && chmod 0700 "$dir/var/cache/apt/archives/partial"
fi
chmod 0644 "$dir/etc/passwd" "$dir/etc/group"
chown 0:42 "$dir/etc/shadow" "$dir/etc/gshadow"
chmod 0640 "$dir/etc/shadow" "$dir/etc/gshadow"

# Alternatives of the postinsts (mawk, util-linux, tar, debianutils, cpp, gcc, g++), with the
# host's update-alternatives on the rootfs; only those whose target is installed.
alt() { # alt LINK NAME PATH PRIORITY [SLAVE-LINK SLAVE-NAME SLAVE-PATH]...
  local args=(--install "$1" "$2" "$3" "$4")
  [ -e "$dir$3" ] || return 0
  shift 4
  while [ $# -ge 3 ]; do args+=(--slave "$1" "$2" "$3"); shift 3; done
  update-alternatives --root "$dir" --quiet "${args[@]}"
}
alt /usr/bin/awk awk /usr/bin/mawk 5 /usr/bin/nawk nawk /usr/bin/mawk
alt /usr/bin/pager pager /bin/more 50
alt /usr/sbin/rmt rmt /usr/sbin/rmt-tar 50
alt /usr/bin/which which /usr/bin/which.debianutils 0
alt /lib/cpp cpp /usr/bin/cpp 10
alt /usr/bin/cc cc /usr/bin/gcc 20
alt /usr/bin/c89 c89 /usr/bin/c89-gcc 20
alt /usr/bin/c99 c99 /usr/bin/c99-gcc 20
alt /usr/bin/c++ c++ /usr/bin/g++ 20

# dash: /bin/sh (shipped as a link) diverted from bash, as its postinst records it.
if [ -n "${have[dash]:-}" ]; then
  printf '%s\n' /usr/share/man/man1/sh.1.gz /usr/share/man/man1/sh.distrib.1.gz dash \
    /bin/sh /bin/sh.distrib dash >"$admin/diversions"
fi

# base-files
bf=$dir/usr/share/base-files
for pair in dot.profile:/root/.profile dot.bashrc:/root/.bashrc profile:/etc/profile motd:/etc/motd; do
  [ -f "$dir${pair#*:}" ] || cp -p "$bf/${pair%%:*}" "$dir${pair#*:}"
done
install_directory() { # DIR MODE GID
  [ -d "$dir/$1" ] && return 0
  mkdir "$dir/$1" && chown "0:$3" "$dir/$1" && chmod "$2" "$dir/$1"
}
for d in mnt srv opt etc/opt var/opt media; do install_directory "$d" 755 0; done
install_directory var/mail 2775 8
[ -L "$dir/var/spool/mail" ] || ln -s ../mail "$dir/var/spool/mail"
install_directory run/lock 1777 0
for pair in var/run:/run var/lock:/run/lock; do
  d=$dir/${pair%%:*}
  if [ ! -L "$d" ]; then rm -rf "$d" && ln -s "${pair#*:}" "$d"; fi
done
for d in "" /share /share/man /bin /games /lib /include /sbin /src /etc; do mkdir -p "$dir/usr/local$d"; done
ln -sfn share/man "$dir/usr/local/man"
[ -e "$dir/etc/dpkg/origins/default" ] || ln -s debian "$dir/etc/dpkg/origins/default"

# debianutils: /etc/shells (its update-shells is a shell script with --root).
[ -f "$dir/etc/shells" ] || cp -p "$dir/usr/share/debianutils/shells" "$dir/etc/shells"
sh "$dir/usr/sbin/update-shells" --root "$dir"
# libc-bin, login, libpam-modules, tzdata (debconf's default: Etc/UTC)
[ -f "$dir/etc/nsswitch.conf" ] || cp -p "$dir/usr/share/libc-bin/nsswitch.conf" "$dir/etc/nsswitch.conf"
for f in /etc/subuid /etc/subgid /etc/environment; do [ -e "$dir$f" ] || install -m 0644 /dev/null "$dir$f"; done
[ -e "$dir/etc/security/opasswd" ] || install -m 0600 /dev/null "$dir/etc/security/opasswd"
if [ -n "${have[tzdata]:-}" ]; then
  ln -sfn /usr/share/zoneinfo/Etc/UTC "$dir/etc/localtime"
  echo Etc/UTC >"$dir/etc/timezone"
fi

# ca-certificates: every certificate enabled (debconf's default), then what update-ca-certificates
# makes: NAME.pem links, the hash links (`openssl rehash` of copies) and ca-certificates.crt.
if [ -n "${have[ca-certificates]:-}" ]; then
  mkdir -p "$dir/usr/local/share/ca-certificates"
  conf=$dir/etc/ca-certificates.conf certs=$dir/etc/ssl/certs
  cat >"$conf" <<'EOF'
# This file lists certificates that you wish to use or to ignore to be
# installed in /etc/ssl/certs.
# update-ca-certificates(8) will update /etc/ssl/certs by reading this file.
#
# This is autogenerated by dpkg-reconfigure ca-certificates.
# Certificates should be installed under /usr/share/ca-certificates
# and files with extension '.crt' is recognized as available certs.
#
# line begins with # is comment.
# line begins with ! is certificate filename to be deselected.
#
EOF
  (cd "$dir/usr/share/ca-certificates" && find . -type f -name '*.crt' | sed 's|^\./||' | LC_ALL=C sort) >>"$conf"
  rm -rf "$ctl" && mkdir "$ctl"
  : >"$certs/ca-certificates.crt.new"
  while read -r crt; do
    pem=$(basename "$crt" .crt | sed -e 's/ /_/g' -e 's/[()]/=/g' -e 's/,/_/g').pem
    ln -sfn "/usr/share/ca-certificates/$crt" "$certs/$pem"
    cp "$dir/usr/share/ca-certificates/$crt" "$ctl/$pem"
    sed -e '$a\' "$ctl/$pem" >>"$certs/ca-certificates.crt.new"
  done < <(sed -e '/^$/d' -e '/^#/d' -e '/^!/d' "$conf")
  openssl rehash "$ctl"
  find "$ctl" -maxdepth 1 -type l -exec cp -P -t "$certs" {} +
  chmod 0644 "$certs/ca-certificates.crt.new"
  mv -f "$certs/ca-certificates.crt.new" "$certs/ca-certificates.crt"
  log "CA store: $(grep -c 'BEGIN CERTIFICATE' "$certs/ca-certificates.crt") certificates"
fi

# --- 4. two commands under emulation ------------------------------------------------------------
pam=
[ -z "${have[libpam-runtime]:-}" ] || pam='pam-auth-update --package --force'
log "chroot (qemu-user): ldconfig${pam:+; $pam}"
chroot "$dir" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C DEBIAN_FRONTEND=noninteractive \
  sh -c "ldconfig${pam:+ && $pam}"
[ -s "$dir/etc/ld.so.cache" ] || die "ldconfig wrote no $dir/etc/ld.so.cache"
log "done: $dir"
