# tickforge: the game state server, as a small non-root container.
#
#   docker build -t tickforge .
#   docker run --rm -p 7700:7700 --security-opt seccomp=unconfined --ulimit memlock=-1 \
#       tickforge --listen 0.0.0.0:7700
#
# The server runs on io_uring (glommio): the runtime needs io_uring
# syscalls (Docker's and containerd's default seccomp profiles refuse them,
# hence seccomp=unconfined or a profile that allows io_uring_setup,
# io_uring_enter and io_uring_register) and enough locked memory
# (512 KiB per shard; --ulimit memlock). deploy/ has compose and
# Kubernetes files that set both.

# Build stage: the release binary (fat LTO), with cargo's registry and the
# target directory cached between builds.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p tickforge-server \
    && cp target/release/tickforge /tickforge

# Runtime stage: glibc and libgcc only (distroless), running as the
# image's unprivileged "nonroot" user (uid 65532).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /tickforge /usr/local/bin/tickforge
USER 65532:65532
# HTTP, WebSocket, /healthz and /metrics share this one port.
EXPOSE 7700
ENTRYPOINT ["/usr/local/bin/tickforge"]
CMD ["--listen", "0.0.0.0:7700"]
