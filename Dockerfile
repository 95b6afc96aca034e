# syntax=docker/dockerfile:1
# kommbridge: a static binary on a distroless base, running as non-root.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" -o /out/kommbridge ./cmd/kommbridge

# distroless/static has CA certificates and tzdata, and no shell.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/kommbridge /usr/local/bin/kommbridge
COPY config.yaml /etc/kommbridge/config.yaml
USER nonroot:nonroot
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/kommbridge", "health", "--config", "/etc/kommbridge/config.yaml"]
ENTRYPOINT ["/usr/local/bin/kommbridge"]
CMD ["serve", "--config", "/etc/kommbridge/config.yaml"]
