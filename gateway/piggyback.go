package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/gateway/internal/httpbody"
	pb "github.com/dittoconn/dittoconn/proto"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// queryHeaders are the query parameters Ditto copies into the command's
// headers (ditto.gateway.http.query-params-as-headers); other HTTP request
// headers are not forwarded.
var queryHeaders = []string{
	"accept", "channel", ditto.HeaderCorrelationID, "requested-acks", "declared-acks",
	ditto.HeaderResponseRequired, ditto.HeaderTimeout, "live-channel-timeout-strategy",
	"allow-policy-lockout", "condition", "live-channel-condition", "at-historical-revision",
	"at-historical-timestamp", "dry-run",
}

// nullBody is Ditto's answer when no instance responded: 408 with JSON null.
var nullBody = []byte("null")

// devopsErrorResponse is "devops.responses:errorResponse", in Ditto's field order.
type devopsErrorResponse struct {
	Type        string          `json:"type"`
	Status      int             `json:"status"`
	ServiceName string          `json:"serviceName"`
	Instance    string          `json:"instance"`
	Payload     json.RawMessage `json:"payload"`
}

// answer is what this instance contributes to the aggregated response.
type answer struct {
	instance string // key in {"connectivity":{instance:…}}
	body     []byte // inner JSON
}

// piggyback serves POST /devops/piggyback[/:service[/:instance]]: it plays
// both Ditto's gateway (envelope, timeouts, aggregation) and the receiving
// DevOpsCommandsActor of this connectivity instance.
func (s *Server) piggyback(c echo.Context) error {
	req := c.Request()
	if req.Method != http.MethodPost {
		return methodNotAllowed(c, http.MethodPost)
	}

	headers := map[string]string{}
	query := req.URL.Query()
	for _, name := range queryHeaders {
		if v, ok := query[name]; ok && len(v) > 0 {
			headers[name] = v[0]
		}
	}
	// Ditto validates the query timeout before it reads the body.
	if t, ok := headers[ditto.HeaderTimeout]; ok {
		if _, derr := parseTimeout(t); derr != nil {
			return writeError(c, derr)
		}
	}

	body, derr := httpbody.Read(c, s.cfg.BodyLimit, s.log)
	if derr != nil {
		return writeError(c, derr)
	}
	env, derr := decodeEnvelope(body, c.Param("service"), c.Param("instance"))
	if derr != nil {
		return writeError(c, derr)
	}
	for k, v := range env.headers { // envelope headers win over query ones
		headers[k] = v
	}
	timeout := defaultTimeout
	if t, ok := headers[ditto.HeaderTimeout]; ok {
		timeout, _ = parseTimeout(t) // validated above (query) or in decodeEnvelope
	}
	if headers[ditto.HeaderCorrelationID] == "" {
		headers[ditto.HeaderCorrelationID] = uuid.NewString()
	}
	c.Response().Header().Set(ditto.HeaderCorrelationID, headers[ditto.HeaderCorrelationID])

	ctx, cancel := context.WithTimeout(req.Context(), timeout)
	defer cancel()
	log := s.log.With().
		Str("correlation_id", headers[ditto.HeaderCorrelationID]).
		Str("target", env.target).
		Str("command_type", env.commandType).
		Logger()

	if s.cfg.Peers != nil && s.forwards(env, headers) {
		return s.piggybackCluster(c, ctx, log, s.cfg.Peers, env, headers)
	}
	if !s.local.receives(env, headers) {
		log.Debug().Str("service", env.serviceName).Str("instance", env.instance).
			Msg("piggyback addressed to nobody here")
		return c.JSONBlob(http.StatusRequestTimeout, nullBody)
	}
	ans, ok := s.local.execute(ctx, log, env, headers)
	if !ok {
		return c.JSONBlob(http.StatusRequestTimeout, nullBody)
	}
	if !isAggregate(headers) {
		return c.JSONBlob(http.StatusOK, ans.body)
	}
	return c.JSONBlob(http.StatusOK, aggregated(ditto.ServiceName, []answer{ans}))
}

// forwards decides whether other cluster members may be addressed too.
// Not when only this instance is (its own instance route, or a group
// publication, which one instance receives: this one), nor when nobody is
// (another service). A service-wide command with aggregate=false runs on
// this instance only: Ditto would run it on every instance and return the
// first answer, which may then be another instance's 409 for a create this
// one made; one run gives the same answer without the race.
func (s *Server) forwards(env *envelope, headers map[string]string) bool {
	switch {
	case isGroupTopic(headers):
		return false
	case env.serviceName != "" && env.serviceName != ditto.ServiceName:
		return false
	case env.instance != "" && env.serviceName != "":
		return env.instance != s.cfg.Instance
	default:
		return isAggregate(headers)
	}
}

// piggybackCluster runs the command on this instance (when addressed) and
// on every other member that is, and answers with the first answer
// (aggregate=false) or all answers that arrived by the deadline.
func (s *Server) piggybackCluster(c echo.Context, ctx context.Context, log zerolog.Logger, peers Peers,
	env *envelope, headers map[string]string) error {
	fwd := &pb.Command{Type: env.commandType, Headers: maps.Clone(headers), Payload: env.command,
		Target: env.target, Service: env.serviceName, Instance: env.instance}
	n, replies := peers.Forward(ctx, fwd)
	pending := n
	local := make(chan answer, 1)
	if s.local.receives(env, headers) {
		pending++
		go func() {
			ans, ok := s.local.execute(ctx, log, env, headers)
			if !ok {
				ans = answer{}
			}
			local <- ans
		}()
	}
	aggregate := isAggregate(headers)
	var answers []answer
	for pending > 0 && ctx.Err() == nil {
		var ans answer
		select {
		case ans = <-local:
		case r, open := <-replies:
			if !open {
				replies = nil
				continue
			}
			if r.GetKind() == pb.Reply_RESPONSE && json.Valid(r.GetPayload()) {
				ans = answer{instance: r.GetInstance(), body: r.GetPayload()}
			}
		case <-ctx.Done():
			continue
		}
		pending--
		if ans.body == nil {
			continue
		}
		if !aggregate {
			return c.JSONBlob(http.StatusOK, ans.body)
		}
		answers = append(answers, ans)
	}
	if len(answers) == 0 {
		return c.JSONBlob(http.StatusRequestTimeout, nullBody)
	}
	return c.JSONBlob(http.StatusOK, aggregated(ditto.ServiceName, answers))
}

// devops is this instance's DevOpsCommandsActor: which piggyback commands
// Ditto's pub/sub would deliver to it, and how it answers them through a
// Dispatcher. The HTTP endpoint and the commands other members forward
// share it.
type devops struct {
	instance string
	d        Dispatcher
}

// ServeForwarded returns the handler of piggyback commands another member's
// gateway forwarded (see Peers): it runs them, as this instance's devops
// receiver, against the Dispatcher of the member that received them. It
// needs no Server: the actors are given it when they start, before the
// Server (which needs the actors) exists.
func ServeForwarded(instance string, logger zerolog.Logger) func(ctx context.Context, d Dispatcher, cmd *pb.Command) *pb.Reply {
	base := logger.With().Str("component", "gateway").Logger()
	return func(ctx context.Context, d Dispatcher, cmd *pb.Command) *pb.Reply {
		local := devops{instance: instance, d: d}
		env := &envelope{serviceName: cmd.GetService(), instance: cmd.GetInstance(), target: cmd.GetTarget(),
			command: cmd.GetPayload()}
		env.commandType, env.typeText = commandType(env.command)
		headers := cmd.GetHeaders()
		if headers == nil {
			headers = map[string]string{}
		}
		if !local.receives(env, headers) {
			return &pb.Reply{Kind: pb.Reply_NO_ANSWER}
		}
		log := base.With().
			Str("correlation_id", headers[ditto.HeaderCorrelationID]).
			Str("target", env.target).
			Str("command_type", env.commandType).
			Bool("forwarded", true).
			Logger()
		ans, ok := local.execute(ctx, log, env, headers)
		if !ok {
			return &pb.Reply{Kind: pb.Reply_NO_ANSWER}
		}
		return &pb.Reply{Kind: pb.Reply_RESPONSE, Status: http.StatusOK, Payload: ans.body, Instance: ans.instance}
	}
}

// receives decides whether Ditto's pub/sub would deliver the command to this
// instance. Topics are executePiggybackCommand[:service[:instance]] and only
// the service topic has a group subscription, so a group publication to the
// bare or the instance topic reaches nobody.
func (v devops) receives(env *envelope, headers map[string]string) bool {
	group := isGroupTopic(headers)
	switch {
	case env.serviceName == "":
		return !group // every member subscribes; the instance is then ignored
	case env.serviceName != ditto.ServiceName:
		return false
	case env.instance == "":
		return true
	default:
		return !group && env.instance == v.instance
	}
}

// execute runs the command as this instance's DevOpsCommandsActor would.
// ok=false means no answer (Ditto's aggregator then times out with 408).
func (v devops) execute(ctx context.Context, log zerolog.Logger, env *envelope, headers map[string]string) (answer, bool) {
	// Ditto names errorResponses after the command's service/instance if it
	// carried them, after the receiving instance otherwise.
	errInstance := v.instance
	if env.instance != "" {
		errInstance = env.instance
	}
	errorAnswer := func(status int, payload []byte) (answer, bool) {
		return answer{instance: errInstance, body: marshalNoEscape(devopsErrorResponse{
			Type: ditto.DevopsErrorResponse, Status: status, ServiceName: ditto.ServiceName,
			Instance: errInstance, Payload: payload,
		})}, true
	}

	if !ditto.KnownCommandTypes[env.commandType] {
		log.Warn().Str("type", env.typeText).Msg("piggyback command type has no mapping strategy")
		return errorAnswer(http.StatusBadRequest, ditto.JSONTypeNotParsable(env.typeText).JSON())
	}

	cmd := &pb.Command{Type: env.commandType, Headers: headers, Payload: env.command}
	cmd.SetDeadlineFrom(ctx)
	reply, err := v.d.Dispatch(ctx, normaliseTarget(env.target), cmd)
	if err != nil {
		if de, isDitto := ditto.As(err); isDitto {
			// The actor answered with a Ditto error: that is its response.
			return answer{instance: v.instance, body: de.JSON()}, true
		}
		if errors.Is(err, ditto.ErrNoRoute) || errors.Is(err, context.DeadlineExceeded) ||
			errors.Is(err, context.Canceled) || ctx.Err() != nil {
			log.Info().Err(err).Msg("piggyback got no answer")
			return answer{}, false
		}
		// Ditto turns any failed ask into an ask.error errorResponse. The Go
		// error stays in the log: it may name internal addresses.
		log.Error().Err(err).Msg("piggyback dispatch failed")
		return errorAnswer(http.StatusServiceUnavailable, ditto.AskFailed(
			fmt.Sprintf("Asking the actor at <%s> failed.", env.target)).JSON())
	}

	malformed := func(why string) (answer, bool) {
		log.Error().Str("reason", why).Msg("malformed reply from dispatcher")
		return errorAnswer(http.StatusInternalServerError, ditto.InternalError(
			"The connectivity service sent a malformed response.").JSON())
	}
	if reply == nil {
		return malformed("nil reply")
	}
	switch reply.GetKind() {
	case pb.Reply_RESPONSE:
		if !json.Valid(reply.GetPayload()) {
			return malformed("response payload is not JSON")
		}
		return answer{instance: v.instance, body: reply.GetPayload()}, true
	case pb.Reply_PARSE_ERROR:
		if jsonKind(reply.GetPayload()) != '{' || !json.Valid(reply.GetPayload()) {
			return malformed("parse error payload is not a JSON object")
		}
		return errorAnswer(errorStatus(reply), reply.GetPayload())
	case pb.Reply_NO_ANSWER:
		log.Debug().Msg("command expects no answer")
		return answer{}, false
	default:
		return malformed("unknown reply kind " + reply.GetKind().String())
	}
}

// errorStatus is the status of a parse error reply: the reply's, else the
// error JSON's "status", else 500 (as Ditto's DevOpsErrorResponse falls back).
func errorStatus(reply *pb.Reply) int {
	if reply.GetStatus() != 0 {
		return int(reply.GetStatus())
	}
	var e struct {
		Status int `json:"status"`
	}
	if json.Unmarshal(reply.GetPayload(), &e) == nil && e.Status >= 100 && e.Status <= 599 {
		return e.Status
	}
	return http.StatusInternalServerError
}

// aggregated wraps the answers as {"service":{"instance":inner,…}} in
// instance order, keeping each inner's bytes untouched.
func aggregated(service string, answers []answer) []byte {
	slices.SortStableFunc(answers, func(a, b answer) int { return strings.Compare(a.instance, b.instance) })
	var b bytes.Buffer
	b.WriteByte('{')
	b.Write(marshalNoEscape(service))
	b.WriteString(":{")
	for i, a := range answers {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(marshalNoEscape(a.instance))
		b.WriteByte(':')
		b.Write(bytes.TrimSpace(a.body))
	}
	b.WriteString("}}")
	return b.Bytes()
}

// isAggregate: absent is true, else Java's Boolean.parseBoolean (only "true",
// in any case, is true), as Ditto reads the header.
func isAggregate(headers map[string]string) bool {
	v, ok := headers[ditto.HeaderAggregate]
	return !ok || strings.EqualFold(v, "true")
}

// isGroupTopic: absent or "false" (any case) is false, any other value true.
func isGroupTopic(headers map[string]string) bool {
	v, ok := headers[ditto.HeaderIsGroupTopic]
	return ok && !strings.EqualFold(v, "false")
}
