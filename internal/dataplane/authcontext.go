package dataplane

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/dittoconn/dittoconn/internal/bus"
	"github.com/dittoconn/dittoconn/internal/placeholder"
)

// headerAuthContext is Ditto's internal header for a signal's authorization
// context: {"type":…,"subjects":[…]}. A signal consumed by a source carries
// the source's resolved context in it, so that request:subjectId resolves
// wherever the signal is published (another connection, another node).
const headerAuthContext = "ditto-auth-context"

// authContextType is the type Ditto gives a connection source's context.
const authContextType = "pre-authenticated-connection"

type authContext struct {
	Type     string   `json:"type"`
	Subjects []string `json:"subjects"`
}

// encodeAuthContext is the header value of subjects; "" for none.
func encodeAuthContext(subjects []string) string {
	if len(subjects) == 0 {
		return ""
	}
	b, err := json.Marshal(authContext{Type: authContextType, Subjects: subjects})
	if err != nil {
		return ""
	}
	return string(b)
}

// setAuthHeader replaces h's authorization context header, in any case,
// with v ("": removed).
func setAuthHeader(h map[string]string, v string) {
	for k := range h {
		if strings.EqualFold(k, headerAuthContext) {
			delete(h, k)
		}
	}
	if v != "" {
		h[headerAuthContext] = v
	}
}

// firstAuthSubject is request:subjectId of a signal: the first subject of
// its authorization context, "" without one.
func firstAuthSubject(h map[string]string) string {
	if subs := signalSubjects(h); len(subs) > 0 {
		return subs[0]
	}
	return ""
}

// Routing is how standalone routing authorizes a target for a signal of
// another connection (no policy store decides it without Ditto).
type Routing string

const (
	// RoutingSubjects (the default, also ""): a target receives a signal
	// only when its resolved authorization context shares a subject with
	// the one the signal was consumed under; a signal without a context
	// reaches no target. This is what Ditto's default policy grants the
	// subject that created a thing.
	RoutingSubjects Routing = "subjects"
	// RoutingAll: every subscribed target receives every signal, whatever
	// the contexts; for single-tenant installations only.
	RoutingAll Routing = "all"
)

// ParseRouting reads DITTOCONN_STANDALONE_ROUTING.
func ParseRouting(s string) (Routing, error) {
	switch r := Routing(strings.ToLower(strings.TrimSpace(s))); r {
	case RoutingSubjects, RoutingAll:
		return r, nil
	case "":
		return RoutingSubjects, nil
	}
	return "", fmt.Errorf("standalone routing %q: want %q or %q", s, RoutingSubjects, RoutingAll)
}

// authMemo is a target's last authorization answer for a context header.
type authMemo struct {
	header string
	ok     bool
}

// signalSubjects is the authorization context a signal was consumed under
// (nil: none, or not readable).
func signalSubjects(h map[string]string) []string {
	v, ok := h[headerAuthContext]
	if !ok {
		return nil
	}
	var ac authContext
	if json.Unmarshal([]byte(v), &ac) != nil {
		return nil
	}
	return ac.Subjects
}

// authorizes reports whether the target's authorization context, its
// placeholders resolved against the signal, shares a subject with the
// context the signal was consumed under. A subject that does not resolve
// matches nothing (Ditto's unresolvable placeholder fails only that one).
func (t *target) authorizes(s *bus.Signal) bool {
	if t.p.cfg.Routing == RoutingAll {
		return true
	}
	if t.staticSubjects != nil {
		// A source's context is usually constant, so its header is the same
		// string on every signal: remember the last answer instead of
		// decoding it for every target and signal.
		v := s.Message.Headers[headerAuthContext]
		if m := t.authMemo.Load(); m != nil && m.header == v {
			return m.ok
		}
		ok := false
		for _, sub := range signalSubjects(s.Message.Headers) {
			ok = ok || slices.Contains(t.staticSubjects, sub)
		}
		t.authMemo.Store(&authMemo{header: v, ok: ok})
		return ok
	}
	have := signalSubjects(s.Message.Headers)
	if len(have) == 0 {
		return false // deny by default: nothing says who may read it
	}
	vals := placeholder.ForMessage(s.Message, t.p.id)
	vals.SubjectID = have[0]
	for _, tmpl := range t.subjects {
		if sub, err := tmpl.Resolve(vals); err == nil && sub != "" && slices.Contains(have, sub) {
			return true
		}
	}
	return false
}
