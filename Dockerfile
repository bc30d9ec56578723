# syntax=docker/dockerfile:1
# Cairn container image: a static binary on a distroless base, running as a
# non-root user, data in the /data volume.
#
#   docker build -t cairn .
#   docker run -p 3000:3000 -v cairn-data:/data \
#     -e BETTER_AUTH_SECRET="$(openssl rand -hex 32)" -e BETTER_AUTH_URL=https://cairn.example.com cairn
#
# UNTESTED here: the build machine has no container engine. deploy/deploy_test.go
# checks this file's structure and that the same static build command works.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/cairn ./cmd/cairn

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/cairn /usr/local/bin/cairn
ENV CAIRN_ENV=production \
    CAIRN_DATA_DIR=/data \
    PORT=3000
# distroless:nonroot runs as uid 65532; the volume must be writable by it.
USER 65532:65532
VOLUME ["/data"]
EXPOSE 3000
# The binary is its own health probe (no curl in a distroless image).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/cairn", "healthcheck"]
# SIGTERM drains the backlog into the store before exiting; give it time
# (docker stop -t 60).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/cairn"]
CMD ["serve"]
