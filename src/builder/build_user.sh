# build_user.sh: the command of the Docker builder container (`sh -c`), which runs the build
# script ($1, ASSEMBLE_SH) as BUILD_USER (UID:GID). The container starts as root with no
# capabilities but CHOWN, SETUID and SETGID, and no-new-privileges (see container.rs). As root,
# this gives BUILD_USER what the build writes: /build (the uploaded sources' tar, SRC, OUT),
# STAGE, BUILD_HOME (HOME, MIX_HOME and HEX_HOME: copies of the image's when it has them, so a
# Hex installed in the image is still there) and the build cache volume (CACHE; one that root
# builds wrote is handed over once, whole). Then setpriv runs the script as BUILD_USER: a
# non-root process has no capabilities left. An image without setpriv builds as root, with those
# three capabilities only. Nothing here writes to stdout: it carries OUT (send_out.sh).
#
# The builder's inputs (RELEASE_OCI_INPUTS, docs/builder-inputs.md), as root first: the CA bundle
# (RELEASE_OCI_CA) joins the image's trust store for this container only (the image's own file is
# kept aside for the minimal base), and the secrets move
# from the upload into RELEASE_OCI_SECRETS (a tmpfs), readable by BUILD_USER alone.
set -eu
inputs=${RELEASE_OCI_INPUTS:-/nonexistent}
if [ -n "${RELEASE_OCI_CA:-}" ] && [ -f "$RELEASE_OCI_CA" ] && [ "$(id -u)" = 0 ]; then
  bundle=/etc/ssl/certs/ca-certificates.crt
  mkdir -p /etc/ssl/certs
  # The image's own bundle, kept aside: the minimal base takes it (minimal_base.sh), never the
  # one the build trusts.
  if [ -f "$bundle" ] && [ ! -e /etc/ssl/release-oci-image-ca-certificates.crt ]; then
    cp -pL "$bundle" /etc/ssl/release-oci-image-ca-certificates.crt
  fi
  if [ -L "$bundle" ]; then cp --remove-destination "$(readlink -f "$bundle")" "$bundle"; fi
  { printf '\n'; cat "$RELEASE_OCI_CA"; } >>"$bundle"
  SSL_CERT_FILE=$bundle HEX_CACERTS_PATH=$bundle GIT_SSL_CAINFO=$bundle CURL_CA_BUNDLE=$bundle
  NODE_EXTRA_CA_CERTS=$RELEASE_OCI_CA
  export SSL_CERT_FILE HEX_CACERTS_PATH GIT_SSL_CAINFO CURL_CA_BUNDLE NODE_EXTRA_CA_CERTS
fi
if [ -n "${RELEASE_OCI_SECRETS:-}" ] && [ -d "$inputs/secrets" ]; then
  mkdir -p "$RELEASE_OCI_SECRETS"
  for f in "$inputs"/secrets/*; do
    if [ -f "$f" ]; then cp "$f" "$RELEASE_OCI_SECRETS/" && rm -f "$f"; fi
  done
  rmdir "$inputs/secrets"
  chmod 0500 "$RELEASE_OCI_SECRETS"
  chmod 0400 "$RELEASE_OCI_SECRETS"/* 2>/dev/null || true
fi
if [ -n "${BUILD_USER:-}" ] && [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1; then
  owner=$BUILD_USER
  # A name for BUILD_USER: ssh (git over SSH) refuses to run for a uid /etc/passwd lacks.
  if ! grep -q "^[^:]*:[^:]*:${owner%%:*}:" /etc/passwd 2>/dev/null; then
    printf 'build:x:%s:%s:release-oci build:%s:/bin/sh\n' "${owner%%:*}" "${owner#*:}" "$BUILD_HOME" >>/etc/passwd
  fi
  if ! grep -q "^[^:]*:[^:]*:${owner#*:}:" /etc/group 2>/dev/null; then
    printf 'build:x:%s:\n' "${owner#*:}" >>/etc/group
  fi
  if [ -n "${RELEASE_OCI_SECRETS:-}" ] && [ -d "$RELEASE_OCI_SECRETS" ]; then chown -R "$owner" "$RELEASE_OCI_SECRETS"; fi
  home=$BUILD_HOME
  mkdir -p "$SRC" "$OUT" "$home"
  chown "$owner" "${SRC%/*}" "$SRC" "$OUT"
  if [ -e "${SRC_TAR:-}" ]; then chown "$owner" "$SRC_TAR"; fi
  if [ -n "${STAGE:-}" ]; then mkdir -p "$STAGE" && chown "$owner" "$STAGE"; fi
  if [ -n "${CACHE:-}" ]; then
    mkdir -p "$CACHE"
    if [ "$(stat -c %u:%g "$CACHE")" != "$owner" ]; then chown -R "$owner" "$CACHE"; fi
  fi
  from_mix=${MIX_HOME:-${HOME:-/root}/.mix}
  from_hex=${HEX_HOME:-${HOME:-/root}/.hex}
  if [ -d "$from_mix" ]; then cp -R "$from_mix" "$home/.mix"; fi
  if [ -d "$from_hex" ]; then cp -R "$from_hex" "$home/.hex"; fi
  chown -R "$owner" "$home"
  HOME=$home MIX_HOME=$home/.mix HEX_HOME=$home/.hex
  export HOME MIX_HOME HEX_HOME
  exec setpriv --reuid="${owner%%:*}" --regid="${owner#*:}" --clear-groups /bin/sh -c "$1" assemble.sh
fi
if [ -n "${BUILD_USER:-}" ] && [ "$(id -u)" = 0 ]; then
  printf '==> no setpriv in the builder image: building as root (with the CHOWN, SETUID and SETGID capabilities only)\n' >&2
fi
exec /bin/sh -c "$1" assemble.sh
