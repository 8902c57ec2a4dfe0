package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"anprd/internal/health"
	"anprd/internal/status"
)

func fakeDaemon(t *testing.T, ready bool) string {
	t.Helper()
	rep := status.Report{
		Version: "v1.0.0", UptimeSeconds: 3725, Ready: ready,
		Components: []health.Status{{Name: "database", State: health.OK, Ready: true, Detail: "schema 1", Since: time.Unix(0, 0)}},
		Static: status.Static{
			Site:  status.Site{ID: "oslo-p1", Device: "box-1", TimeZone: "Europe/Oslo"},
			Lanes: []status.Lane{{ID: "in-1", Direction: "entry", Mode: "barrier", Camera: "rtsp://admin:xxxxx@cam/1"}},
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/status":
			json.NewEncoder(w).Encode(rep)
		case "/readyz":
			if !ready {
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte("not ready: reader\n"))
				return
			}
			w.Write([]byte("ready\n"))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestStatus(t *testing.T) {
	addr := fakeDaemon(t, true)
	var out, errb bytes.Buffer
	if code := run([]string{"-addr", addr, "status"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"anprd v1.0.0  READY  up 1h2m5s", "site oslo-p1  device box-1", "in-1", "entry", "database", "schema 1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := run([]string{"-addr", addr, "-json", "status"}, &out, &errb); code != 0 || !json.Valid(out.Bytes()) {
		t.Errorf("-json: exit %d, %q", code, out.String())
	}
}

func TestReady(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"-addr", fakeDaemon(t, true), "ready"}, &out, &errb); code != 0 {
		t.Errorf("ready daemon: exit %d", code)
	}
	out.Reset()
	if code := run([]string{"-addr", fakeDaemon(t, false), "ready"}, &out, &errb); code != 1 || !strings.Contains(out.String(), "not ready: reader") {
		t.Errorf("unready daemon: exit %d, %q", code, out.String())
	}
}

func TestUnreachableAndUsage(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	var out, errb bytes.Buffer
	if code := run([]string{"-addr", addr, "status"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "cannot reach anprd") {
		t.Errorf("unreachable: exit %d, %q", code, errb.String())
	}
	if code := run([]string{"frobnicate"}, &out, &errb); code != 2 {
		t.Errorf("unknown command: exit %d", code)
	}
	if code := run(nil, &out, &errb); code != 2 {
		t.Errorf("no command: exit %d", code)
	}
}
