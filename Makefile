# Conveniences; the canonical commands are in the README and need only Go.
.PHONY: run test bench
run:
	go run ./cmd/gateway
test:
	bash scripts/test.sh
bench:
	go test -run=NONE -bench=. -benchmem ./codec ./bench
