package status_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzActionRequest: whatever form, headers or path a client sends, no
// action is carried out without the token, and nothing panics.
func FuzzActionRequest(f *testing.F) {
	f.Add("/actions/open", "lane=in-1&operator=kari&reason=broken&token="+testToken, "application/x-www-form-urlencoded", "")
	f.Add("/actions/resync", "operator=%00&reason=%ff%fe&token=x", "application/x-www-form-urlencoded", "http://evil")
	f.Add("/actions/presence/remove", "plate=AB+12345&plate=CD1&operator=a&reason=abc&token=", "multipart/form-data; boundary=x", "")
	f.Add("/actions/open", strings.Repeat("a=b&", 5000), "application/x-www-form-urlencoded", "null")
	fx := newFixture(f, nil)
	f.Fuzz(func(t *testing.T, path, body, ctype, origin string) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		r, err := http.NewRequest(http.MethodPost, "http://example.com"+path, strings.NewReader(body))
		if err != nil {
			return
		}
		r.RemoteAddr = "10.9.9.9:1"
		r.Header.Set("Content-Type", ctype)
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		before := len(fx.acts.Calls())
		fx.clk.Add(time.Hour) // never the rate limit
		rec := httptest.NewRecorder()
		fx.handler.ServeHTTP(rec, r)
		if len(fx.acts.Calls()) > before && !strings.Contains(body, testToken) {
			t.Fatalf("an action was carried out without the token: %s %q", path, body)
		}
		if rec.Code == http.StatusOK && strings.HasPrefix(path, "/actions/") && len(fx.acts.Calls()) == before {
			t.Fatalf("200 for an action not carried out: %s %q", path, body)
		}
	})
}

// FuzzImagePath: the image route serves the one image in the store and
// nothing else, whatever the path.
func FuzzImagePath(f *testing.F) {
	for _, p := range []string{cropPath, "../secret", "2026-12-01/..%2f..%2fsecret", "%2e%2e/x", "//etc/passwd", "2026-12-01/135955.120-in-1-7-plate.jpg/"} {
		f.Add(p)
	}
	fx := newFixture(f, nil)
	f.Fuzz(func(t *testing.T, p string) {
		r, err := http.NewRequest(http.MethodGet, "http://example.com/evidence/"+p, nil)
		if err != nil {
			return
		}
		r.RemoteAddr = "127.0.0.1:1"
		rec := httptest.NewRecorder()
		fx.handler.ServeHTTP(rec, r)
		if rec.Code == http.StatusOK && r.URL.Path != "/evidence/"+cropPath {
			t.Fatalf("served %q (%s)", p, r.URL.Path)
		}
	})
}
