package status

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"html/template"
	"math"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"anprd/internal/passage"
	"anprd/internal/plate"
	"anprd/internal/presence"
)

// Actions are what the page may ask of the daemon. Each is called only
// with a good token, within the rate limit, and is audited by the page.
type Actions interface {
	// OpenBarrier opens lane's barrier by hand through the lane
	// (Lane.OpenManual), which records a manual passage with the
	// operator and reason: the passage in the outbox is the opening's
	// audit. ErrUnknownLane and ErrNoBarrier say why it could not.
	OpenBarrier(ctx context.Context, lane string, m passage.ManualOpen) error
	// RemovePresence says plate is not inside (its exit was missed) and
	// returns the record removed, or nil when it was not inside.
	RemovePresence(plate string) (*presence.Vehicle, error)
	// Resync asks the central system for the permit data again.
	Resync(detail string) error
}

// Errors an Actions returns for a lane it cannot open.
var (
	ErrUnknownLane = errors.New("no such lane")
	ErrNoBarrier   = errors.New("the lane is free-flow: it has no barrier")
)

// AuditEntry is one action tried with a good token.
type AuditEntry struct {
	Time     time.Time `json:"time"`
	Action   string    `json:"action"` // open, presence_remove, resync
	Lane     string    `json:"lane,omitempty"`
	Plate    string    `json:"plate,omitempty"`
	Operator string    `json:"operator"`
	Reason   string    `json:"reason"`
	Client   string    `json:"client"`
	Result   string    `json:"result"` // "ok", or why it did not happen
}

// Audit keeps the audit entries durably; *AuditLog is one.
type Audit interface {
	Append(AuditEntry) error
	Recent(n int) ([]AuditEntry, error)
}

// Action names, in the audit and the metrics.
const (
	ActOpen           = "open"
	ActRemovePresence = "presence_remove"
	ActResync         = "resync"
)

// Bounds of what a technician types.
const (
	maxOperator = 64
	minReason   = 3
	maxReason   = 200
	maxBody     = 8 << 10
	// actionTimeout bounds the wait for a lane to take an opening.
	actionTimeout = 10 * time.Second
)

type actions struct {
	c     Config
	token [sha256.Size]byte // compared as digests: equal time whatever the lengths
	lim   *limiter
}

func newActions(c Config) *actions {
	return &actions{c: c, token: sha256.Sum256([]byte(c.Token)), lim: newLimiter(c.Limits)}
}

func (a *actions) enabled() bool { return a.c.Actions != nil && a.c.Token != "" && a.c.Audit != nil }

// request is one action asked for, once it passed the checks.
type request struct {
	client   netip.Addr
	form     url.Values
	operator string
	reason   string
}

// outcome is what an action did: the HTTP status, the message for the
// technician, and the audit entry's fields it fills in.
type outcome struct {
	code  int
	msg   string
	entry AuditEntry
}

// handle runs the checks every action shares, in this order: actions
// on, not cross-site, the rate limit (before the token, so that guesses
// are limited too), the token, the operator and reason; then the action,
// then its audit entry and log line.
func (a *actions) handle(act func(ctx context.Context, rq request) outcome) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := actionName(r.URL.Path)
		m := a.c.Metrics
		if !a.enabled() {
			m.actions.WithLabelValues(name, "disabled").Inc()
			reply(w, r, http.StatusForbidden, "actions are disabled on this box: set status.action_token_file to enable them")
			return
		}
		if why := crossSite(r); why != "" {
			m.refused.WithLabelValues("cross_site").Inc()
			reply(w, r, http.StatusForbidden, "refused: "+why)
			return
		}
		client, _ := clientAddr(r)
		if wait, whose := a.lim.take(client, a.c.Now()); wait > 0 {
			m.actions.WithLabelValues(name, "rate_limited").Inc()
			secs := int(math.Ceil(wait.Seconds()))
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			msg := fmt.Sprintf("too many actions from %s: try again in %d s", client, secs)
			if whose == "total" {
				msg = fmt.Sprintf("too many actions on this box just now: try again in %d s", secs)
			}
			reply(w, r, http.StatusTooManyRequests, msg)
			return
		}
		if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/x-www-form-urlencoded" {
			m.actions.WithLabelValues(name, "invalid").Inc()
			reply(w, r, http.StatusUnsupportedMediaType, "send the action as a form (application/x-www-form-urlencoded)")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		if err := r.ParseForm(); err != nil {
			m.actions.WithLabelValues(name, "invalid").Inc()
			reply(w, r, http.StatusBadRequest, "the form could not be read: "+err.Error())
			return
		}
		if !a.tokenOK(r) {
			m.actions.WithLabelValues(name, "unauthorized").Inc()
			// The token is never logged, right or wrong.
			a.c.Log.Warn().Str("action", name).Str("client", client.String()).Msg("status page action refused: wrong or missing token")
			reply(w, r, http.StatusUnauthorized, "wrong or missing action token")
			return
		}
		rq := request{client: client, form: r.PostForm}
		var err error
		if rq.operator, err = text(r.PostForm.Get("operator"), "operator", 1, maxOperator); err == nil {
			rq.reason, err = text(r.PostForm.Get("reason"), "reason", minReason, maxReason)
		}
		if err != nil {
			m.actions.WithLabelValues(name, "invalid").Inc()
			reply(w, r, http.StatusBadRequest, err.Error())
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), actionTimeout)
		defer cancel()
		out := act(ctx, rq)
		if out.code == http.StatusBadRequest {
			// Not carried out, nothing to audit.
			m.actions.WithLabelValues(name, "invalid").Inc()
			reply(w, r, out.code, out.msg)
			return
		}
		e := out.entry
		e.Time, e.Action, e.Operator, e.Reason, e.Client = a.c.Now(), name, rq.operator, rq.reason, client.String()
		result := "ok"
		if out.code != http.StatusOK {
			result = "failed"
			e.Result = out.msg
		} else {
			e.Result = "ok"
		}
		m.actions.WithLabelValues(name, result).Inc()
		ev := a.c.Log.Info()
		if result != "ok" {
			ev = a.c.Log.Warn()
		}
		ev.Str("action", name).Str("lane", e.Lane).Str("operator", e.Operator).Str("reason", e.Reason).
			Str("client", e.Client).Str("result", e.Result).Msg("status page action")
		if err := a.c.Audit.Append(e); err != nil {
			// The log line above is then the only record: say so loudly.
			a.c.Log.Error().Err(err).Interface("entry", e).Msg("status page action not written to the audit log")
		}
		reply(w, r, out.code, out.msg)
	}
}

func actionName(path string) string {
	switch path {
	case "/actions/open":
		return ActOpen
	case "/actions/presence/remove":
		return ActRemovePresence
	case "/actions/resync":
		return ActResync
	}
	return "unknown"
}

// tokenOK compares the token given (the form's, or a bearer token) with
// the configured one in constant time.
func (a *actions) tokenOK(r *http.Request) bool {
	given := r.PostForm.Get("token")
	if b, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && given == "" {
		given = b
	}
	if given == "" {
		return false
	}
	h := sha256.Sum256([]byte(given))
	return subtle.ConstantTimeCompare(h[:], a.token[:]) == 1
}

// crossSite says why a request comes from another site's page, or "".
// The token in the form already stops a forged request (no cookie
// carries it); this refuses the attempt before it costs a rate-limit
// token.
func crossSite(r *http.Request) string {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return "the request comes from another site's page"
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return fmt.Sprintf("the request comes from %s, not this box's page", o)
		}
	}
	return ""
}

// text checks one typed field.
func text(s, field string, minLen, maxLen int) (string, error) {
	s = strings.TrimSpace(s)
	n := utf8.RuneCountInString(s)
	switch {
	case !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl):
		return "", fmt.Errorf("%s: only plain text, on one line", field)
	case n < minLen && minLen == 1:
		return "", fmt.Errorf("%s: required (who does this)", field)
	case n < minLen:
		return "", fmt.Errorf("%s: at least %d characters (why this is done)", field, minLen)
	case n > maxLen:
		return "", fmt.Errorf("%s: at most %d characters", field, maxLen)
	}
	return s, nil
}

func (a *actions) open(ctx context.Context, rq request) outcome {
	lane := rq.form.Get("lane")
	if lane == "" {
		return outcome{code: http.StatusBadRequest, msg: "lane: required"}
	}
	e := AuditEntry{Lane: lane}
	err := a.c.Actions.OpenBarrier(ctx, lane, passage.ManualOpen{Source: "page", Operator: rq.operator, Reason: rq.reason})
	switch {
	case err == nil:
		return outcome{code: http.StatusOK, msg: fmt.Sprintf("lane %s: barrier opened; the manual passage is recorded", lane), entry: e}
	case errors.Is(err, ErrUnknownLane):
		return outcome{code: http.StatusNotFound, msg: fmt.Sprintf("lane %s: %v", lane, err), entry: e}
	case errors.Is(err, ErrNoBarrier):
		return outcome{code: http.StatusConflict, msg: fmt.Sprintf("lane %s: %v", lane, err), entry: e}
	default:
		return outcome{code: http.StatusInternalServerError, msg: fmt.Sprintf("lane %s: barrier not opened: %v", lane, err), entry: e}
	}
}

func (a *actions) removePresence(ctx context.Context, rq request) outcome {
	p := plate.Normalize(rq.form.Get("plate"))
	if p == "" || len(p) > 16 {
		return outcome{code: http.StatusBadRequest, msg: "plate: required, the registration as on the plate"}
	}
	e := AuditEntry{Plate: p}
	v, err := a.c.Actions.RemovePresence(p)
	switch {
	case err != nil:
		return outcome{code: http.StatusInternalServerError, msg: fmt.Sprintf("%s not removed: %v", p, err), entry: e}
	case v == nil:
		return outcome{code: http.StatusNotFound, msg: fmt.Sprintf("%s is not inside; nothing removed", p), entry: e}
	}
	return outcome{code: http.StatusOK, msg: fmt.Sprintf("%s removed from the vehicles inside (entered %s by lane %s)",
		p, v.Entered.In(a.c.Location).Format("2006-01-02 15:04"), v.Lane), entry: e}
}

func (a *actions) resync(ctx context.Context, rq request) outcome {
	if err := a.c.Actions.Resync(fmt.Sprintf("status page: %s: %s", rq.operator, rq.reason)); err != nil {
		return outcome{code: http.StatusInternalServerError, msg: "resync not requested: " + err.Error()}
	}
	return outcome{code: http.StatusOK, msg: "permit resync requested from the central system"}
}

var replyTmpl = template.Must(template.New("reply").Parse(`<!doctype html><html lang="en"><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>anprd: {{.Code}}</title>
<p>{{.Msg}}</p><p><a href="/">Back to the status page</a></p></html>
`))

// reply answers in plain text (the page's script shows it next to the
// form) or, for a browser posting the form without the script, as a
// small page with a link back.
func reply(w http.ResponseWriter, r *http.Request, code int, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if strings.Contains(r.Header.Get("Accept"), "text/html") {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(code)
		replyTmpl.Execute(w, struct {
			Code int
			Msg  string
		}{code, msg})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	fmt.Fprintln(w, msg)
}
