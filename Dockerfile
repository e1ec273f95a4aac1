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

# The simulator's image, for fuzz campaigns on Kubernetes (deploy/fuzz-campaign/): a static sei-sim and the
# scenario suite with its fixtures, so `sei-sim run scenarios/` works in it too. Built only when asked for:
#
#   docker build --target sei-sim -t sei-sim:0.1.0 .
#
# Its own build stage, so the operator's image neither waits for nor is invalidated by it. The simulator compiles
# the operator's RBAC manifests in (deploy/base/, sim/src/apiserver/authorization.rs). Built with the workspace's `lto`
# profile (fat LTO, one codegen unit): a campaign runs for hours, so the slower build pays for itself.
FROM build AS sim-build
COPY deploy/base deploy/base
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    CARGO_PROFILE_LTO_STRIP=symbols cargo build --profile lto --locked -p sei-sim --bin sei-sim \
    && cp target/lto/sei-sim /sei-sim

FROM scratch AS sei-sim
COPY --from=sim-build /sei-sim /sei-sim
COPY scenarios /scenarios
COPY fixtures /fixtures
# Scenario files name their fixtures relative to the repository root, here /.
WORKDIR /
USER 65532:65532
ENTRYPOINT ["/sei-sim"]
CMD ["--help"]

# Stage 2: nothing but the binary. The last stage, so `docker build .` still builds the operator's image. In a cluster the client trusts the service account's CA file; no system
# certificates are read. 65532 is the conventional unprivileged "nonroot" user.
FROM scratch
COPY --from=build /sei-operator /sei-operator
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/sei-operator"]
CMD ["run"]
