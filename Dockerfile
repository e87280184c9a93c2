# syntax=docker/dockerfile:1
# The operator image: the release binary on distroless/cc (glibc, libgcc, CA certificates), non-root.
# tests/env/images/operator.sh builds the same image without Docker (umoci) for the local node tests;
# change both together.
#
#   docker build -t flink-operator:dev .

# Builder: the same toolchain, target (x86_64-unknown-linux-gnu) and flags as the local release build
# (`cargo build --release --locked`), on Debian bookworm so the binary links against bookworm's glibc 2.36,
# the one the runtime image ships.
ARG RUST_VERSION=1.95
FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && install -D -m 0755 target/release/flink-operator /out/flink-operator

# Runtime: distroless/cc-debian12 = glibc + libgcc_s + CA certificates + /etc/passwd with nonroot (65532),
# no shell, no package manager. `ldd` of the binary lists only libc, libm, libgcc_s and the loader.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build --chown=0:0 /out/flink-operator /usr/local/bin/flink-operator
USER 65532:65532
WORKDIR /home/nonroot
EXPOSE 9443 8085
ENTRYPOINT ["/usr/local/bin/flink-operator"]
