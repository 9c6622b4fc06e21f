package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// FuzzEnvelope posts arbitrary bodies (and timeout query values) and checks
// the edge never panics and never answers 5xx: every envelope problem is the
// client's, answered 4xx with Ditto error JSON, or a 200/408 envelope answer.
func FuzzEnvelope(f *testing.F) {
	for _, s := range seedEnvelopes {
		f.Add(string(readSeed(f, s.file)), "")
	}
	for _, body := range []string{
		"", "null", "[]", `"x"`, "{", `{}`, `{"targetActorSelection":5}`,
		`{"targetActorSelection":"/x","headers":{"timeout":"-1"},"piggybackCommand":{}}`,
		`{"targetActorSelection":"/x","headers":{"timeout":"999999999999999999999y"},"piggybackCommand":{}}`,
		`{"targetActorSelection":"/x","headers":{"aggregate":"TRUE","is-group-topic":{}},"piggybackCommand":{"type":null}}`,
		`{"serviceName":"connectivity","instance":"1","targetActorSelection":"/x","headers":null,"piggybackCommand":null}`,
		"{\"targetActorSelection\":\"\xff\",\"headers\":{\"\xfe\":1},\"piggybackCommand\":{\"type\":\"\\u0000\"}}",
	} {
		f.Add(body, "")
	}
	f.Add(retrieveBody, "10s")
	f.Add(retrieveBody, "61s")
	f.Add(retrieveBody, "x")

	d := okReply(responseJSON)
	cfg := Config{Instance: testInstance, DevopsSecured: true, DevopsPassword: testPassword, Logger: zerolog.Nop(),
		BodyLimit: 4 << 10}
	s := New(cfg, d)
	f.Fuzz(func(t *testing.T, body, timeout string) {
		path := "/devops/piggyback/connectivity"
		if timeout != "" {
			path += "?timeout=" + url.QueryEscape(timeout)
		}
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.SetBasicAuth(devopsUser, testPassword)
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)

		if rec.Code >= 500 {
			t.Fatalf("status %d for body %q: %s", rec.Code, body, rec.Body)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("Content-Type %q for body %q", ct, body)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("answer is not JSON for body %q: %s", body, rec.Body)
		}
	})
}
