// Package connections serves Ditto's HTTP API for connections
// (/api/2/connections): real HTTP statuses and Ditto error JSON instead of the
// piggyback envelope. Each request is decoded and validated here, turned into
// one or more connectivity commands and handed to a Dispatcher; the package
// knows nothing of actors or stores.
package connections

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/gateway/internal/httpbody"
	pb "github.com/dittoconn/dittoconn/proto"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// Dispatcher delivers a command to the actor at an actor path. It has the
// shape of gateway.Dispatcher; it is declared again here so that this package
// does not import its parent.
type Dispatcher interface {
	Dispatch(ctx context.Context, target string, cmd *pb.Command) (*pb.Reply, error)
}

// Defaults, Ditto's where Ditto has one.
const (
	// DefaultListLimit is ditto.gateway.command.connections-retrieve-limit.
	DefaultListLimit = 100
	// defaultTimeout is Ditto's command timeout when ?timeout= is absent.
	defaultTimeout = ditto.DefaultAskTimeout
	// dryRunTimeout: Ditto's route sends dry runs with a 15 s timeout header.
	dryRunTimeout = 15 * time.Second
	// listWorkers bounds the retrieveConnection calls one listing runs at once.
	listWorkers = 8
)

// Config configures the API.
type Config struct {
	// BodyLimit caps request bodies in bytes.
	BodyLimit int64
	// ListLimit is the most connections GET /api/2/connections returns without
	// ids-only or paging; <= 0 means DefaultListLimit.
	ListLimit int
	// ParseTimeout parses and bounds-checks ?timeout= (the gateway's Ditto
	// duration rules); nil ignores the parameter.
	ParseTimeout func(string) (time.Duration, *ditto.Error)
	Logger       zerolog.Logger
}

// API is the /api/2/connections handler set.
type API struct {
	cfg Config
	d   Dispatcher
	log zerolog.Logger
}

// New builds the API on d.
func New(cfg Config, d Dispatcher) *API {
	if cfg.ListLimit <= 0 {
		cfg.ListLimit = DefaultListLimit
	}
	return &API{cfg: cfg, d: d, log: cfg.Logger.With().Str("api", "connections").Logger()}
}

// Register adds every route to g, which is mounted at /api/2/connections and
// already carries the devops authentication.
func (a *API) Register(g *echo.Group) {
	// Other methods get 405 with Allow, as Pekko answers; registered first,
	// the specific methods below replace them. (Without this, the group's
	// catch-all not-found route would answer 404.)
	for path, allow := range map[string]string{
		"": "GET, POST", "/": "GET, POST", "/:id": "GET, PUT, DELETE", "/:id/command": "POST",
		"/:id/status": "GET", "/:id/metrics": "GET", "/:id/logs": "GET",
	} {
		g.Any(path, notAllowed(allow))
	}
	for _, root := range []string{"", "/"} { // Ditto accepts a trailing slash
		g.GET(root, a.list)
		g.POST(root, a.create)
	}
	g.GET("/:id", a.retrieve)
	g.PUT("/:id", a.put)
	g.DELETE("/:id", a.delete)
	g.POST("/:id/command", a.command)
	g.GET("/:id/status", a.status)
	g.GET("/:id/metrics", a.metrics)
	g.GET("/:id/logs", a.logs)
}

// notAllowed leaves the 405 answer to the server's error handler, which
// words it as Pekko does from the Allow list.
func notAllowed(allow string) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Set(echo.ContextKeyHeaderAllow, allow)
		return echo.ErrMethodNotAllowed
	}
}

// idPattern is a whole connection id.
var idPattern = regexp.MustCompile("^" + ditto.ConnectionIDRegex + "$")

// request is what every handler starts from: the headers sent with each
// command, the deadline, and a logger.
type request struct {
	headers map[string]string
	timeout time.Duration
	log     zerolog.Logger
}

// begin reads the parameters common to every endpoint: ?timeout= and the
// correlation id (request header or query parameter, else a new one).
func (a *API) begin(c echo.Context, timeout time.Duration) (*request, *ditto.Error) {
	req := c.Request()
	if t := req.URL.Query().Get(ditto.HeaderTimeout); t != "" && a.cfg.ParseTimeout != nil {
		d, derr := a.cfg.ParseTimeout(t)
		if derr != nil {
			return nil, derr
		}
		timeout = d
	}
	corr := req.Header.Get(ditto.HeaderCorrelationID)
	if corr == "" {
		corr = req.URL.Query().Get(ditto.HeaderCorrelationID)
	}
	if corr == "" || len(corr) > 256 {
		corr = uuid.NewString()
	}
	c.Response().Header().Set(ditto.HeaderCorrelationID, corr)
	return &request{
		// The API always runs commands as sudo, as Ditto's route does.
		headers: map[string]string{ditto.HeaderSudo: "true", ditto.HeaderCorrelationID: corr},
		timeout: timeout,
		log:     a.log.With().Str("correlation_id", corr).Logger(),
	}, nil
}

// outcome is a command's answer: a success with its JSON, or a Ditto error
// (err) to send as it is.
type outcome struct {
	status  int
	body    []byte
	headers map[string]string
	err     *ditto.Error
	// errBody is the error JSON exactly as the actor sent it, when it did.
	errBody []byte
}

// send dispatches one command built from fields (type first) and maps the
// reply. ctx carries the request's deadline.
func (a *API) send(ctx context.Context, r *request, target, cmdType string, fields ...any) outcome {
	payload := object(append([]any{"type", cmdType}, fields...)...)
	headers := make(map[string]string, len(r.headers))
	for k, v := range r.headers {
		headers[k] = v
	}
	cmd := &pb.Command{Type: cmdType, Headers: headers, Payload: payload}
	cmd.SetDeadlineFrom(ctx)
	reply, err := a.d.Dispatch(ctx, target, cmd)
	if err != nil {
		if de, ok := ditto.As(err); ok {
			return outcome{err: de}
		}
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || ctx.Err() != nil {
			r.log.Info().Err(err).Str("command_type", cmdType).Msg("command got no answer in time")
			return outcome{err: ditto.CommandTimeout(r.timeout.Milliseconds())}
		}
		if errors.Is(err, ditto.ErrNoRoute) {
			r.log.Error().Str("target", target).Msg("no actor for the connections API")
			return outcome{err: ditto.ServiceUnavailable()}
		}
		// The Go error stays in the log: it may name internal addresses.
		r.log.Error().Err(err).Str("command_type", cmdType).Msg("dispatch failed")
		return outcome{err: ditto.AskFailed(fmt.Sprintf("Asking the actor at <%s> failed.", target))}
	}
	if reply == nil {
		return a.malformed(r, "nil reply")
	}
	switch reply.GetKind() {
	case pb.Reply_NO_ANSWER:
		return outcome{err: ditto.CommandTimeout(r.timeout.Milliseconds())}
	case pb.Reply_RESPONSE, pb.Reply_PARSE_ERROR:
	default:
		return a.malformed(r, "unknown reply kind "+reply.GetKind().String())
	}
	body := reply.GetPayload()
	if !json.Valid(body) || firstByte(body) != '{' {
		return a.malformed(r, "reply payload is not a JSON object")
	}
	status := int(reply.GetStatus())
	if status == 0 {
		var s struct {
			Status int `json:"status"`
		}
		_ = json.Unmarshal(body, &s)
		status = s.Status
	}
	if status < 100 || status > 599 {
		return a.malformed(r, "reply has no HTTP status")
	}
	if status >= 400 || reply.GetKind() == pb.Reply_PARSE_ERROR {
		var de ditto.Error
		if json.Unmarshal(body, &de) != nil || de.Code == "" {
			return a.malformed(r, "error reply is not a Ditto error")
		}
		de.Status = status
		return outcome{status: status, err: &de, errBody: body, headers: reply.GetHeaders()}
	}
	return outcome{status: status, body: body, headers: reply.GetHeaders()}
}

func (a *API) malformed(r *request, why string) outcome {
	r.log.Error().Str("reason", why).Msg("malformed reply from dispatcher")
	return outcome{err: ditto.InternalError("The connectivity service sent a malformed response.")}
}

// fail writes the outcome's error: the actor's own JSON when it sent one.
func fail(c echo.Context, o outcome) error {
	if o.errBody != nil {
		return c.JSONBlob(o.err.Status, o.errBody)
	}
	return writeError(c, o.err)
}

func writeError(c echo.Context, e *ditto.Error) error {
	return c.JSONBlob(e.Status, e.JSON())
}

// field returns one top-level member of a JSON object, or nil.
func field(obj []byte, name string) json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(obj, &m) != nil {
		return nil
	}
	return m[name]
}

// object encodes name/value pairs as a JSON object in the given order,
// without HTML escaping (Ditto sends '<' and '>' as they are).
func object(kv ...any) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(marshal(kv[i]))
		b.WriteByte(':')
		if raw, ok := kv[i+1].(json.RawMessage); ok {
			b.Write(raw)
		} else {
			b.Write(marshal(kv[i+1]))
		}
	}
	b.WriteByte('}')
	return b.Bytes()
}

func marshal(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// only strings, numbers, bools and string slices reach here
		panic(fmt.Sprintf("connections: marshal %T: %v", v, err))
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// pathID reads and checks the {id} path segment.
func pathID(c echo.Context) (string, *ditto.Error) {
	id := c.Param("id")
	if u, err := url.PathUnescape(id); err == nil {
		id = u
	}
	if !idPattern.MatchString(id) {
		return "", ditto.ConnectionIDInvalid(id)
	}
	return id, nil
}

// readObject reads a body that must be one JSON object and returns it
// trimmed, with its top-level members for inspection.
func (a *API) readObject(c echo.Context) ([]byte, map[string]json.RawMessage, *ditto.Error) {
	body, derr := httpbody.Read(c, a.cfg.BodyLimit, a.log)
	if derr != nil {
		return nil, nil, derr
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, nil, ditto.JSONEmpty()
	}
	if !json.Valid(body) {
		return nil, nil, ditto.JSONParseFailed(string(body))
	}
	if body[0] != '{' {
		return nil, nil, ditto.JSONNotAnObject(compact(body))
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, nil, ditto.JSONParseFailed(string(body))
	}
	return body, fields, nil
}

// withFields returns obj with name:value members put first, keeping the
// rest of obj byte for byte.
func withFields(obj []byte, kv ...any) []byte {
	head := object(kv...)
	rest := bytes.TrimSpace(obj[1:]) // after '{'
	if len(rest) > 0 && rest[0] == '}' {
		return head
	}
	out := append([]byte{}, head[:len(head)-1]...)
	out = append(out, ',')
	return append(out, rest...)
}

func compact(raw []byte) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}

func firstByte(raw []byte) byte {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}
