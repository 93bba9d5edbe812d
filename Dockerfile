# syntax=docker/dockerfile:1
# Build: a static, FIPS-140-3-module binary.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOFIPS140=v1.0.0 go build -trimpath -ldflags "-s -w" -o /out/keyconsole ./cmd/keyconsole \
 && mkdir -p /out/data

# Run: no shell, no package manager, non-root.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/keyconsole /usr/local/bin/keyconsole
COPY --from=build --chown=65532:65532 /out/data /data
ENV KEYCONSOLE_ENV=production \
    KEYCONSOLE_HTTP_ADDR=0.0.0.0:8080 \
    KEYCONSOLE_SFTP_ADDR=0.0.0.0:2222 \
    KEYCONSOLE_DATA_DIR=/data
USER 65532:65532
EXPOSE 8080 2222
VOLUME ["/data"]
ENTRYPOINT ["/usr/local/bin/keyconsole"]
CMD ["serve"]
