# anprd — run `make help` for the targets.

SHELL      := /bin/bash
GO         ?= go
PREFIX     ?= /usr/local
DESTDIR    ?=
DEPS_DIR   := $(CURDIR)/.deps
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS    := -X anprd/internal/buildinfo.Version=$(VERSION)
BIN        := bin
# The tests find the ONNX Runtime library and models that `make deps` fetched.
TEST_ENV   := ANPRD_DEPS_DIR=$(DEPS_DIR)

# The demo runs configs/demo.yaml: two lanes whose cameras are synthetic
# clips (anprctl synth) that anprd replays from .demo/, so it reads plates
# and connects to nothing beyond 127.0.0.1. It shows every endpoint, waits
# for the first read events, then runs until Ctrl-C.
define DEMO_SCRIPT
set -u; mkdir -p .demo
export ANPRD_LOG_FORMAT=console
addr=127.0.0.1:9810
[ -d .demo/clip-in ] || $(BIN)/anprctl synth -plate EL43210 -country NO .demo/clip-in || exit 1
[ -d .demo/clip-out ] || $(BIN)/anprctl synth -plate ABC123 -country SE .demo/clip-out || exit 1
$(BIN)/anprd -check-config configs/demo.yaml || exit 1
$(BIN)/anprd -config configs/demo.yaml & pid=$$!
trap "kill -TERM $$pid 2>/dev/null" INT TERM
for i in $$(seq 100); do $(BIN)/anprctl -addr $$addr ready >/dev/null 2>&1 && break; kill -0 $$pid 2>/dev/null || exit 1; sleep 0.2; done
echo; echo "== GET /healthz";        curl -fsS http://$$addr/healthz
echo "== GET /readyz";               curl -fsS http://$$addr/readyz
sleep 6
echo "== GET /metrics (anprd_camera_*, anprd_read_*)"; curl -fsS http://$$addr/metrics | grep -E "^anprd_(camera_frames_total|camera_connected|read_events_total)"
echo "== anprctl status (GET /api/v1/status)"; $(BIN)/anprctl -addr $$addr status
echo; echo "anprd is running with status on http://$$addr/ (pid $$pid). Ctrl-C stops it."
wait $$pid; rc=$$?
if kill -0 $$pid 2>/dev/null; then wait $$pid; rc=$$?; fi
echo "anprd exited with status $$rc"; exit $$rc
endef
export DEMO_SCRIPT

.PHONY: help deps build test demo bench lint install clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

deps: ## install Debian packages, Go modules, ONNX Runtime and the OCR models (idempotent)
	@internal/deps/deps.sh $(DEPS_DIR)

build: deps ## build bin/anprd and bin/anprctl
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

test: deps ## run every test with the race detector
	$(TEST_ENV) $(GO) test -race -count=1 -timeout 15m ./...

demo: build ## run anprd on two synthetic lanes and show what it reads and serves (Ctrl-C stops it)
	@bash -c "$$DEMO_SCRIPT"

bench: deps ## run the benchmarks
	$(TEST_ENV) $(GO) test -run '^$$' -bench . -benchmem ./...

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

install: build ## install binaries, the ONNX Runtime library, models, systemd unit and example config
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/usr/lib/anprd $(DESTDIR)/usr/share/anprd/models \
		$(DESTDIR)/etc/anprd $(DESTDIR)/etc/systemd/system $(DESTDIR)/etc/udev/rules.d
	install -m 0755 $(BIN)/anprd $(BIN)/anprctl $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 $(DEPS_DIR)/lib/libonnxruntime.so.1 $(DESTDIR)/usr/lib/anprd/
	install -m 0644 $(DEPS_DIR)/models/* $(DESTDIR)/usr/share/anprd/models/
	sed 's|/usr/local/bin/|$(PREFIX)/bin/|g' systemd/anprd.service > $(DESTDIR)/etc/systemd/system/anprd.service
	chmod 0644 $(DESTDIR)/etc/systemd/system/anprd.service
	install -m 0644 systemd/60-anprd.rules $(DESTDIR)/etc/udev/rules.d/
	install -m 0644 configs/anprd.example.yaml $(DESTDIR)/etc/anprd/anprd.example.yaml
	@[ -e $(DESTDIR)/etc/anprd/anprd.yaml ] || install -m 0640 configs/anprd.example.yaml $(DESTDIR)/etc/anprd/anprd.yaml
	@[ -e $(DESTDIR)/etc/default/anprd ] || { install -d $(DESTDIR)/etc/default && install -m 0644 systemd/anprd.env $(DESTDIR)/etc/default/anprd; }
	install -d $(DESTDIR)/usr/share/doc/anprd
	install -m 0644 README.md docs/install.md $(DESTDIR)/usr/share/doc/anprd/
	@if [ -z "$(DESTDIR)" ] && command -v systemctl >/dev/null; then \
		id anprd >/dev/null 2>&1 || useradd --system --user-group --no-create-home --home-dir /var/lib/anprd --shell /usr/sbin/nologin anprd; \
		chgrp anprd /etc/anprd/anprd.yaml; \
		udevadm control --reload-rules 2>/dev/null; udevadm trigger --subsystem-match=gpio 2>/dev/null; \
		systemctl daemon-reload; echo "installed; edit /etc/anprd/anprd.yaml, check the box with anprctl doctor, then: systemctl enable --now anprd"; fi

clean: ## remove build output, demo clips and demo state (keeps .deps)
	rm -rf $(BIN) .demo
