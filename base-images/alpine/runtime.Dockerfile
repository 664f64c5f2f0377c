# Runtime base for *-unknown-linux-musl releases built in release-oci/builder:alpine.
#   docker build -t release-oci/runtime:alpine -f base-images/alpine/runtime.Dockerfile base-images/alpine
# Keep the Alpine release equal to the builder's (3.20 here): ERTS links that release's musl,
# OpenSSL (libcrypto3) and ncurses.
ARG BASE=alpine:3.20.3
FROM ${BASE}

RUN apk add --no-cache ca-certificates libstdc++ ncurses-libs openssl

ENV LANG=C.UTF-8
CMD ["/bin/sh"]
