# dnsloss collector and analyzer for docker-compose.yml: fleet binaries, without the embedded
# engine (-tags nochdb), talking to the ClickHouse server.
FROM golang:1.26-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libpcap-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN go build -tags nochdb -o /out/collector ./collector && go build -tags nochdb -o /out/analyzer ./analyzer

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libpcap0.8 ca-certificates wget && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/collector /out/analyzer /usr/local/bin/
ENTRYPOINT ["/usr/local/bin/collector"]
