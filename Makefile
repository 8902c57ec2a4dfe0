# anprd — run `make help` for the targets.

SHELL      := /bin/bash
GO         ?= go
PREFIX     ?= /usr/local
DESTDIR    ?=
DEPS_DIR   := $(CURDIR)/.deps
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS    := -X anprd/internal/buildinfo.Version=$(VERSION)
BIN        := bin
# Debian's Python, with python3-torch and the rest that make deps installs
# (a python3 earlier on PATH, such as pyenv's, lacks them).
PYTHON     ?= /usr/bin/python3
# The tests find the ONNX Runtime library and models that `make deps` fetched.
TEST_ENV   := ANPRD_DEPS_DIR=$(DEPS_DIR)

# The demo: anprctl demo starts a Mosquitto on a free 127.0.0.1 port, makes
# a central key, pushes the demo permits, runs anprd on configs/demo.yaml
# with simulated barriers and rendered cars, and prints the passages as the
# central system receives them; everything it writes is in .demo/. It
# stops anprd and the broker itself; the trap ends them too should it die.
# DEMO_ONCE=1 plays the scenario once and exits 0 only if it went as
# expected.
define DEMO_SCRIPT
set -u
leftovers() {
	for f in .demo/anprd.pid .demo/mosquitto.pid; do
		[ -f $$f ] || continue
		p=$$(cat $$f); rm -f $$f
		grep -qs "$(CURDIR)/.demo" /proc/$$p/cmdline && kill -TERM $$p 2>/dev/null
	done
}
trap leftovers EXIT
trap 'kill -INT $$pid 2>/dev/null' INT TERM
once=; case "$${DEMO_ONCE:-}" in ""|0) ;; *) once=-once ;; esac
$(BIN)/anprctl demo -dir .demo -config configs/demo.yaml -anprd $(BIN)/anprd $$once & pid=$$!
wait $$pid; rc=$$?
# A signal ends the first wait early: wait for the demo's own shutdown.
if kill -0 $$pid 2>/dev/null; then wait $$pid; rc=$$?; fi
exit $$rc
endef
export DEMO_SCRIPT

.PHONY: help deps build test demo bench lint install clean model

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

deps: ## install Debian packages, Go modules, ONNX Runtime and the OCR models (idempotent)
	@internal/deps/deps.sh $(DEPS_DIR)

build: deps ## build bin/anprd and bin/anprctl
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

test: deps ## run every test with the race detector, and the recogniser recipe's tests
	$(TEST_ENV) $(GO) test -race -count=1 -timeout 15m ./...
	cd train && $(TEST_ENV) $(PYTHON) -m unittest discover -s . -p 'test_*.py'

model: deps ## train the plate recogniser into train/model (hours on two cores; see train/README.md)
	$(GO) build -o .train/cropper ./train/cropper
	$(GO) build -o .train/onnxrun ./train/onnxrun
	cd train && $(PYTHON) -m anprtrain all
	@echo "model: train/model/anprd-plate-rec.onnx written; put its sha256 (train/model/anprd-plate-rec.json) in internal/deps/SHA256SUMS and train/model/MODEL_CARD.md"

demo: build ## the whole product here: broker, permits, anprd, simulated barriers, rendered cars (DEMO_ONCE=1: once)
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
	install -m 0644 README.md docs/install.md docs/rules.md docs/plates.md $(DESTDIR)/usr/share/doc/anprd/
	@if [ -z "$(DESTDIR)" ] && command -v systemctl >/dev/null; then \
		id anprd >/dev/null 2>&1 || useradd --system --user-group --no-create-home --home-dir /var/lib/anprd --shell /usr/sbin/nologin anprd; \
		chgrp anprd /etc/anprd/anprd.yaml; \
		udevadm control --reload-rules 2>/dev/null; udevadm trigger --subsystem-match=gpio 2>/dev/null; \
		systemctl daemon-reload; echo "installed; edit /etc/anprd/anprd.yaml, check the box with anprctl doctor, then: systemctl enable --now anprd"; fi

clean: ## remove build output, demo clips and demo state (keeps .deps)
	rm -rf $(BIN) .demo
