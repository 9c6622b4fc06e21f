package connection

import (
	"encoding/json"
	"strconv"

	pb "github.com/dittoconn/dittoconn/proto"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

func reply(status int, payload []byte, rev int64) *pb.Reply {
	r := &pb.Reply{Kind: pb.Reply_RESPONSE, Status: int32(status), Payload: payload}
	if rev > 0 {
		r.Headers = map[string]string{ditto.HeaderEntityRevision: strconv.FormatInt(rev, 10)}
	}
	return r
}

// respond is the answer body v (a response type below) with status, at
// revision rev.
func respond(status int, v any, rev int64) *pb.Reply { return reply(status, encodeJSON(v), rev) }

func errorReply(err *ditto.Error, rev int64) *pb.Reply {
	return reply(err.Status, err.JSON(), rev)
}

// parseErrorReply is for a command whose JSON could not be read: the gateway
// wraps it as devops.responses:errorResponse, as Ditto does.
func parseErrorReply(err *ditto.Error) *pb.Reply {
	return &pb.Reply{Kind: pb.Reply_PARSE_ERROR, Status: int32(err.Status), Payload: err.JSON()}
}

// The answers' bodies, fields in Ditto's order.

// head starts every response: the response type of the command, the status.
type head struct {
	Type   string `json:"type"`
	Status int    `json:"status"`
}

func headOf(cmdType string, status int) head {
	return head{Type: ditto.ResponseType(cmdType), Status: status}
}

type idResponse struct {
	head
	ConnectionID string `json:"connectionId"`
}

type connectionResponse struct {
	head
	Connection json.RawMessage `json:"connection"`
}

// MarshalJSON splices the connection document in as it is: retrieve is the
// hot path, and encoding/json would scan the document again (three times the
// cost of the answer).
func (r connectionResponse) MarshalJSON() ([]byte, error) {
	h := encodeJSON(r.head)
	out := make([]byte, 0, len(h)+len(r.Connection)+16)
	out = append(out, h[:len(h)-1]...) // without its closing brace
	out = append(out, `,"connection":`...)
	if len(r.Connection) == 0 {
		out = append(out, "null"...)
	} else {
		out = append(out, r.Connection...)
	}
	return append(out, '}'), nil
}

type tagsResponse struct {
	head
	ConnectionTags []string `json:"connectionTags"`
}

type testResponse struct {
	head
	ConnectionID string `json:"connectionId"`
	TestResult   string `json:"testResult"`
}

type statusResponse struct {
	head
	ConnectionID     string      `json:"connectionId"`
	ConnectionStatus string      `json:"connectionStatus"`
	LiveStatus       Status      `json:"liveStatus"`
	RecoveryStatus   Recovery    `json:"recoveryStatus"`
	ConnectedSince   string      `json:"connectedSince,omitempty"`
	ClientStatus     []entryJSON `json:"clientStatus,omitempty"`
	SourceStatus     []entryJSON `json:"sourceStatus,omitempty"`
	TargetStatus     []entryJSON `json:"targetStatus,omitempty"`
}

// entryJSON is one client, source or target entry of a status answer.
type entryJSON struct {
	Type           string    `json:"type"`
	Client         string    `json:"client"`
	Address        string    `json:"address,omitempty"` // sources and targets; filled-in entries have none
	Status         Status    `json:"status"`
	RecoveryStatus *Recovery `json:"recoveryStatus,omitempty"` // clients only
	StatusDetails  string    `json:"statusDetails,omitempty"`
	InStateSince   string    `json:"inStateSince,omitempty"`
}

type metricsResponse struct {
	head
	ConnectionID      string          `json:"connectionId"`
	ConnectionMetrics json.RawMessage `json:"connectionMetrics"`
	ContainsFailures  bool            `json:"containsFailures"`
	SourceMetrics     json.RawMessage `json:"sourceMetrics"`
	TargetMetrics     json.RawMessage `json:"targetMetrics"`
}

type logsResponse struct {
	head
	ConnectionID   string          `json:"connectionId"`
	ConnectionLogs json.RawMessage `json:"connectionLogs"`
	EnabledSince   json.RawMessage `json:"enabledSince"`
	EnabledUntil   json.RawMessage `json:"enabledUntil"`
}
