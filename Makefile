# Conveniences; the canonical commands are in the README and need only Go.
.PHONY: run test bench build
VERSION ?= dev
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null)
build:
	go build -trimpath -ldflags "-X main.version=$(VERSION) -X main.commit=$(COMMIT)" -o bin/gateway ./cmd/gateway
run:
	go run ./cmd/gateway
test:
	bash scripts/test.sh
bench:
	go test -run=NONE -bench=. -benchmem ./codec ./bench
