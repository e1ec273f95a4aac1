# syntax=docker/dockerfile:1
# A static sei-operator binary on an empty base image.
#
#   docker build -t sei-operator:0.1.0 .
#
# Stage 1 builds on Alpine, whose Rust targets musl and links statically by default; kube's TLS is rustls with
# ring and the sidecar client has no TLS, so no OpenSSL or cmake is needed.
FROM rust:1.95-alpine AS build
RUN apk add --no-cache musl-dev
WORKDIR /src
# Symbols stripped through cargo's environment override, leaving the workspace's release profile untouched
# (about 30 MB to 23 MB on x86_64).
ENV CARGO_PROFILE_RELEASE_STRIP=symbols
# Only what the build reads: the workspace manifests and the two member crates.
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY core core
COPY operator operator
COPY sim sim
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p sei-operator --bin sei-operator \
    && cp target/release/sei-operator /sei-operator

# Stage 2: nothing but the binary. In a cluster the client trusts the service account's CA file; no system
# certificates are read. 65532 is the conventional unprivileged "nonroot" user.
FROM scratch
COPY --from=build /sei-operator /sei-operator
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/sei-operator"]
CMD ["run"]
