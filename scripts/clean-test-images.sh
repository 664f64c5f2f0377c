#!/usr/bin/env bash
# Removes the images the integration tests tag (release-oci-test/*); `make test` runs it after the
# suite, pass or fail. Other images are never touched.
set -euo pipefail
images=$(docker images --format '{{.Repository}}:{{.Tag}}' | { grep '^release-oci-test/' || true; })
if [ -n "$images" ]; then
  # shellcheck disable=SC2086
  docker rmi -f $images >/dev/null
fi
echo "removed $(printf '%s' "$images" | grep -c . || true) image(s) tagged release-oci-test/*"
