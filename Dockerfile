# syntax=docker/dockerfile:1.7
#
# backup-guard container image: a static (musl) binary on distroless/static,
# running as UID/GID 65532 (nonroot). Build (BuildKit):
#
#   docker build -t backup-guard:0.1.0 .
#
# The image is not built in this repository's CI (no container engine there);
# the same static musl binary is, and passes the e2e suite (make static).
# docs/install.md says how to build and where the result goes.

ARG RUST_VERSION=1.89

# ------------------------------------------------------------------- build
FROM docker.io/library/rust:${RUST_VERSION}-alpine AS build
# C toolchain for aws-lc-sys / ring (rustls crypto); cmake and perl are what
# aws-lc's build falls back to on some targets.
RUN apk add --no-cache build-base cmake perl
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY benches ./benches
COPY src ./src
# On Alpine the host target is *-unknown-linux-musl and links statically.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin backup-guard \
 && install -D -m 0755 target/release/backup-guard /out/backup-guard
# Fail the build if the binary would need a dynamic loader (distroless/static has none).
RUN if readelf -l /out/backup-guard | grep -q 'Requesting program interpreter'; then \
      echo "backup-guard is dynamically linked" >&2; exit 1; \
    fi \
 && /out/backup-guard --version

# ----------------------------------------------------------------- runtime
# distroless/static: CA certificates (object storage over TLS), /etc/passwd
# with the nonroot user, tzdata; no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="backup-guard" \
      org.opencontainers.image.description="Admission webhook and controller that make every destruction of Velero backup data explicit" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/backup-guard /usr/local/bin/backup-guard
USER 65532:65532
# 8443: admission webhook (HTTPS); 9090: /metrics /livez /readyz (HTTP).
EXPOSE 8443 9090
ENTRYPOINT ["/usr/local/bin/backup-guard"]
CMD ["run"]
