# Runtime base for *-unknown-linux-gnu releases built in release-oci/builder:debian-bookworm.
#   docker build -t release-oci/runtime:debian-bookworm -f base-images/debian-bookworm/runtime.Dockerfile base-images/debian-bookworm
# Only the shared libraries ERTS and the usual NIFs link (crypto: libssl3; the terminal:
# libtinfo6/libncurses6, zlib; C++ NIFs: libstdc++6) and CA certificates for outgoing TLS.
ARG BASE=debian:bookworm-slim
FROM ${BASE}

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates libncurses6 libssl3 libstdc++6 libtinfo6 zlib1g \
 && rm -rf /var/lib/apt/lists/*

ENV LANG=C.UTF-8
CMD ["/bin/sh"]
