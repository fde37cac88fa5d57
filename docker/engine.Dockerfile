# The strom-engine image: built from the workspace root with
#   docker build -f docker/engine.Dockerfile -t strom/engine:0.1.0 .
# Multi-stage: the Rust toolchain builds a release binary; the runtime image is distroless
# (glibc, CA certificates, no shell) and runs as the non-root user 65532.
# No Docker engine runs on the project's build machines, so CI does not build this image.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p strom-engine --bin strom-engine

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/strom-engine /usr/local/bin/strom-engine
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/strom-engine"]
