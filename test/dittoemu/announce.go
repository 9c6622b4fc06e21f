package dittoemu

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dittoconn/dittoconn/internal/protocol"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// AnnounceSubjectDeletion publishes Ditto's SubjectDeletionAnnouncement for
// policyID ("ns:name") and returns how many sessions it reached. As in
// Ditto (DittoProtocolSub's policy announcement pub/sub, topics from
// ReadSubjectExtractor.determineTopicsFor), it reaches the sessions that
// sent START-SEND-POLICY-ANNOUNCEMENTS and hold one of subjects, whose
// namespaces (if any) include the policy's namespace; the RQL filter and
// READ enforcement do not apply (StreamingSessionActor
// isSessionAllowedToReceiveSignal answers true for announcements).
// Requested acknowledgements of announcements are not emulated.
func (e *Emulator) AnnounceSubjectDeletion(policyID string, subjects []string, deleteAt time.Time) int {
	ns, name, _ := strings.Cut(policyID, ":")
	value, _ := json.Marshal(map[string]any{
		"deleteAt":   deleteAt.UTC().Format(time.RFC3339Nano),
		"subjectIds": subjects,
	})
	m := &protocol.Message{
		Topic:   ns + "/" + name + "/policies/announcements/subjectDeletion",
		Headers: map[string]string{"content-type": "application/json"},
		Path:    "/",
		Value:   value,
	}
	e.ensureCorrelation(m)
	n := 0
	for _, s := range e.sessionList() {
		sub := s.sub("POLICY_ANNOUNCEMENTS")
		if sub == nil || !sub.namespaceMatches(ns) || !holdsAny(s.subjects, subjects) {
			continue
		}
		s.enqueue(cloneMsg(m))
		n++
	}
	return n
}

func holdsAny(have, want []string) bool {
	for _, w := range want {
		if contains(have, w) {
			return true
		}
	}
	return false
}

// refreshJWT handles "JWT-TOKEN?jwtToken=<token>" (StreamingSessionActor
// refreshWebSocketSession / checkAuthorizationContextAndStartSessionTimer):
// a valid token of the same subjects restarts the session's expiry timer and
// is answered with nothing; an invalid token, or one of other subjects,
// fails the session with gateway:websocket.session.closed (403) and the
// socket closes.
func (s *session) refreshJWT(text string) {
	_, query, _ := strings.Cut(text, "?")
	params, _ := url.ParseQuery(query)
	token := params.Get("jwtToken")
	s.e.mu.Lock()
	s.e.jwtRefreshes = append(s.e.jwtRefreshes, JWTRefresh{Session: s.id, Token: token})
	s.e.mu.Unlock()
	if s.e.opts.JWT == nil {
		s.enqueue(protocol.ErrorResponse(protocol.Topic{}, map[string]string{"correlation-id": s.origin},
			errUnsupported("JWT-TOKEN refresh without Options.JWT")))
		return
	}
	sub, ok := s.e.opts.JWT(token)
	if !ok {
		s.fail(errSessionClosed("The websocket session was closed because the JWT is invalid.", ""))
		return
	}
	if len(s.subjects) != 1 || s.subjects[0] != sub {
		s.fail(errSessionClosed("The websocket session was closed because the authorization context changed.",
			"Changing the authorization context for an established websocket session isn't supported."))
		return
	}
	s.startExpiry(token)
}

// startExpiry (re)starts the session timeout of a JWT session
// (StreamingSessionActor.startSessionTimeout): when the token's expiry
// passes, the session fails with gateway:websocket.session.expired (401).
func (s *session) startExpiry(token string) {
	if s.e.opts.JWTExpiry == nil {
		return
	}
	exp := s.e.opts.JWTExpiry(token)
	if exp.IsZero() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.expiry != nil {
		s.expiry.Stop()
	}
	s.expiry = time.AfterFunc(time.Until(exp), func() {
		s.fail(ditto.New(http.StatusUnauthorized, "gateway:websocket.session.expired",
			"The websocket session expired because the JWT used for authentication has expired.",
			"You need to periodically refresh your websocket session with a new JWT."))
	})
}

// fail ends the session as Ditto's failed publisher does (WebSocketRoute
// recoverWithRetries): the error, with the session's correlation-id, as the
// last message, then the socket closes.
func (s *session) fail(de *ditto.Error) {
	s.enqueue(protocol.ErrorResponse(protocol.Topic{}, map[string]string{"correlation-id": s.origin}, de))
	s.closeAfterFlush()
}

func errSessionClosed(msg, desc string) *ditto.Error {
	return ditto.New(http.StatusForbidden, "gateway:websocket.session.closed", msg, desc)
}

// JWTRefresh is one JWT-TOKEN message a session sent.
type JWTRefresh struct {
	Session int
	Token   string
}

// JWTRefreshes are the JWT-TOKEN messages received so far, in order.
func (e *Emulator) JWTRefreshes() []JWTRefresh {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]JWTRefresh(nil), e.jwtRefreshes...)
}
