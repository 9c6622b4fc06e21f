package dataplane

import (
	"encoding/json"
	"strings"
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
	v, ok := h[headerAuthContext]
	if !ok {
		return ""
	}
	var ac authContext
	if json.Unmarshal([]byte(v), &ac) != nil || len(ac.Subjects) == 0 {
		return ""
	}
	return ac.Subjects[0]
}
