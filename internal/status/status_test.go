package status

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"anprd/internal/health"

	"github.com/prometheus/client_golang/prometheus"
)

func TestReadyzNamesWhatIsNotReady(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	hr := health.NewRegistry(func() time.Time { return now })
	hr.Register("database").Set(health.OK, true, "")
	reader := hr.Register("reader")
	h := Handler(Config{Health: hr, Gatherer: prometheus.NewRegistry(), Now: func() time.Time { return now }})

	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		b, _ := io.ReadAll(rec.Body)
		return rec.Code, string(b)
	}
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || body != "not ready: reader\n" {
		t.Errorf("/readyz = %d %q", code, body)
	}
	reader.Set(health.OK, true, "")
	if code, _ := get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz when all ready = %d", code)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d", code)
	}
	if code, _ := get("/nope"); code != http.StatusNotFound {
		t.Errorf("/nope = %d", code)
	}
}
