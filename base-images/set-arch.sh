#!/usr/bin/env bash
# Sets the architecture of an image of the local Docker engine:
#
#   base-images/set-arch.sh TAG ARCH      # e.g. release-oci/builder:debian-bookworm-arm64 arm64
#
# `docker import --platform` is ignored by engines without experimental features (20.10): an
# imported rootfs is recorded as the host's architecture. This rewrites the image config's
# `architecture` (and `variant`: v8 for arm64) through `docker save` / `docker load`; the layers
# stay as they are. Does nothing when the image already has ARCH.
set -euo pipefail

tag=${1:?usage: set-arch.sh TAG ARCH}
arch=${2:?usage: set-arch.sh TAG ARCH}

log() { printf '[base-images] %s\n' "$*" >&2; }

found=$(docker image inspect -f '{{.Architecture}}' "$tag")
[ "$found" != "$arch" ] || exit 0
old_id=$(docker image inspect -f '{{.Id}}' "$tag")
log "$tag: architecture $found -> $arch"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/release-oci-set-arch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/image"
docker save "$tag" | tar -C "$tmp/image" -x
python3 - "$tmp/image" "$arch" "$tag" <<'EOF'
import hashlib, json, os, sys

root, arch, tag = sys.argv[1:4]
manifest_path = os.path.join(root, "manifest.json")
with open(manifest_path) as f:
    manifest = json.load(f)
if len(manifest) != 1:
    sys.exit(f"docker save of {tag} holds {len(manifest)} images, expected 1")
entry = manifest[0]
with open(os.path.join(root, entry["Config"])) as f:
    config = json.load(f)
config["architecture"] = arch
if arch == "arm64":
    config["variant"] = "v8"
else:
    config.pop("variant", None)
data = json.dumps(config, separators=(",", ":"), sort_keys=True).encode()
name = hashlib.sha256(data).hexdigest() + ".json"
os.remove(os.path.join(root, entry["Config"]))
with open(os.path.join(root, name), "wb") as f:
    f.write(data)
entry["Config"] = name
entry["RepoTags"] = [tag]
with open(manifest_path, "w") as f:
    json.dump(manifest, f)
EOF
tar -C "$tmp/image" -c . | docker load -q >/dev/null
[ "$(docker image inspect -f '{{.Architecture}}' "$tag")" = "$arch" ] ||
  { log "$tag: could not set the architecture to $arch"; exit 1; }
# The image as imported is no longer tagged; drop it unless something else uses it.
docker image rm "$old_id" >/dev/null 2>&1 || true
