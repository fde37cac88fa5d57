# The strom-control-plane image: built from the workspace root with
#   docker build -f docker/control-plane.Dockerfile -t strom/control-plane:0.1.0 .
# Multi-stage: the Rust toolchain builds a release binary; the runtime image is distroless
# (glibc, CA certificates, no shell) and runs as the non-root user 65532.
# No Docker engine runs on the project's build machines, so CI does not build this image.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p strom-control-plane --bin strom-control-plane

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/strom-control-plane /usr/local/bin/strom-control-plane
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/strom-control-plane"]
