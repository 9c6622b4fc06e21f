package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	pb "github.com/dittoconn/dittoconn/proto"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

const (
	shard        = "/system/sharding/connection"
	retrieveCmd  = `{"type":"connectivity.commands:retrieveConnection","connectionId":"c1"}`
	responseJSON = `{"type":"connectivity.responses:retrieveConnection","status":200,"connection":{"id":"c1"}}`
)

func TestPiggybackRouting(t *testing.T) {
	tests := []struct {
		name     string
		path     string
		headers  string
		extra    string // extra top-level body fields, with leading comma
		answered bool
	}{
		{"no service", "/devops/piggyback", `{}`, "", true},
		{"no service, group topic", "/devops/piggyback", `{"is-group-topic":true}`, "", false},
		{"no service, group topic FALSE", "/devops/piggyback", `{"is-group-topic":"FALSE"}`, "", true},
		{"no service, group topic empty string", "/devops/piggyback", `{"is-group-topic":""}`, "", false},
		{"service", "/devops/piggyback/connectivity", `{}`, "", true},
		{"service, group topic", "/devops/piggyback/connectivity", `{"is-group-topic":true}`, "", true},
		{"instance", "/devops/piggyback/connectivity/1", `{}`, "", true},
		{"instance, group topic", "/devops/piggyback/connectivity/1", `{"is-group-topic":true}`, "", false},
		{"other instance", "/devops/piggyback/connectivity/2", `{}`, "", false},
		{"other service", "/devops/piggyback/things", `{}`, "", false},
		{"other service with our instance", "/devops/piggyback/things/1", `{}`, "", false},
		{"body service other", "/devops/piggyback", `{}`, `,"serviceName":"things"`, false},
		{"body service ours", "/devops/piggyback", `{}`, `,"serviceName":"connectivity"`, true},
		{"body service and instance ours", "/devops/piggyback", `{}`,
			`,"serviceName":"connectivity","instance":"1"`, true},
		{"body service ours, other instance", "/devops/piggyback", `{}`,
			`,"serviceName":"connectivity","instance":"2"`, false},
		{"URL service, body instance other", "/devops/piggyback/connectivity", `{}`, `,"instance":"2"`, false},
		{"URL service, body instance ours, group", "/devops/piggyback/connectivity", `{"is-group-topic":true}`,
			`,"instance":"1"`, false},
		{"URL wins over body service", "/devops/piggyback/connectivity/1", `{}`,
			`,"serviceName":"things","instance":"2"`, true},
		{"body instance without service is ignored", "/devops/piggyback", `{}`, `,"instance":"9"`, true},
		{"null body fields count as absent", "/devops/piggyback", `{}`, `,"serviceName":null`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := okReply(responseJSON)
			s := newTestServer(t, d)
			body := strings.TrimSuffix(envelopeBody(shard, tt.headers, retrieveCmd), "}") + tt.extra + "}"
			rec := serve(t, s, request{path: tt.path, body: body})
			if !tt.answered {
				assert408(t, rec)
				if n := len(d.recorded()); n != 0 {
					t.Fatalf("dispatcher called %d times for a request nobody receives", n)
				}
				return
			}
			assertStatus(t, rec, http.StatusOK)
			assertContentType(t, rec, "application/json")
			assertBody(t, rec, `{"connectivity":{"1":`+responseJSON+`}}`)
			if c := d.onlyCall(t); c.target != shard || c.cmd.GetType() != ditto.RetrieveConnection {
				t.Fatalf("dispatched %q to %q", c.cmd.GetType(), c.target)
			}
		})
	}
}

func TestEnvelopeErrors(t *testing.T) {
	const descJSON = "Check if the JSON was valid (e.g. on https://jsonlint.com) and if it was in required format."
	const descMissing = "Check if all required JSON fields were set."
	jsonInvalid := func(msg string) string {
		return string(ditto.New(400, "json.invalid", msg, descJSON).JSON())
	}
	missing := func(field string) string {
		return `{"status":400,"error":"json.field.missing","message":"JSON did not include required <` + field +
			`> field!","description":"` + descMissing + `"}`
	}
	tests := []struct {
		name string
		body string
		want string // exact bytes
	}{
		{"empty body", "", jsonInvalid("The JSON string to read from must not be empty!")},
		{"not JSON", "not json", jsonInvalid("Failed to parse JSON string 'not json'!")},
		{"truncated", `{"targetActorSelection":`, jsonInvalid(`Failed to parse JSON string '{"targetActorSelection":'!`)},
		{"whitespace only", "  ", jsonInvalid("Failed to parse JSON string '  '!")},
		{"array", `[1, 2]`, jsonInvalid("<[1,2]> is not a valid JSON object!")},
		{"string", `"x"`, jsonInvalid(`<"x"> is not a valid JSON object!`)},
		{"null literal", `null`, missing("/targetActorSelection")},
		{"empty object", `{}`, missing("/targetActorSelection")},
		{"null target", `{"targetActorSelection":null,"headers":{}}`, missing("/targetActorSelection")},
		{"missing headers", `{"targetActorSelection":"/x","piggybackCommand":{}}`, missing("/headers")},
		{"missing command", `{"targetActorSelection":"/x","headers":{}}`, missing("/piggybackCommand")},
		{"target not a string", `{"targetActorSelection":5,"headers":{},"piggybackCommand":{}}`,
			jsonInvalid("Value <5> for </targetActorSelection> is not of type <String>!")},
		{"headers not an object", `{"targetActorSelection":"/x","headers":"x","piggybackCommand":{}}`,
			jsonInvalid(`Value <"x"> for </headers> is not of type <JsonObject>!`)},
		{"command not an object", `{"targetActorSelection":"/x","headers":{},"piggybackCommand":[1]}`,
			jsonInvalid("Value <[1]> for </piggybackCommand> is not of type <JsonObject>!")},
		{"serviceName not a string", `{"serviceName":{"a":1},"targetActorSelection":"/x"}`,
			jsonInvalid(`Value <{"a":1}> for </serviceName> is not of type <String>!`)},
		{"instance not a string", `{"instance":true,"targetActorSelection":"/x"}`,
			jsonInvalid(`Value <true> for </instance> is not of type <String>!`)},
		{"checks in Ditto's order", `{"headers":5}`, missing("/targetActorSelection")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := okReply(`{}`)
			// No service in the URL, so the body's serviceName is checked too.
			rec := serve(t, newTestServer(t, d), request{path: "/devops/piggyback", body: tt.body})
			assertStatus(t, rec, http.StatusBadRequest)
			assertContentType(t, rec, "application/json")
			assertBody(t, rec, tt.want)
			if n := len(d.recorded()); n != 0 {
				t.Fatalf("dispatcher called %d times", n)
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	const limit = 128
	want := `{"status":413,"error":"gateway:request.entity.too.large",` +
		`"message":"The request entity is larger than the allowed <128> bytes.","description":"Send a smaller request body."}`
	big := envelopeBody(shard, `{"aggregate":false}`, `{"type":"connectivity.commands:retrieveConnection","connectionId":"`+
		strings.Repeat("x", limit)+`"}`)
	small := envelopeBody("/x", `{}`, `{"type":"connectivity.commands:retrieveConnection"}`)
	padTo := func(s string, n int) string { return s + strings.Repeat(" ", n-len(s)) }
	tests := []struct {
		name          string
		body          string
		contentLength int64 // -1: unknown (chunked)
		wantStatus    int
	}{
		{"declared too large", big, int64(len(big)), http.StatusRequestEntityTooLarge},
		{"chunked too large", big, -1, http.StatusRequestEntityTooLarge},
		{"exactly the limit", padTo(small, limit), -1, http.StatusOK},
		{"one byte over", padTo(small, limit+1), -1, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.BodyLimit = limit
			d := okReply(responseJSON)
			s := New(cfg, d)
			req := httptest.NewRequest(http.MethodPost, "/devops/piggyback/connectivity",
				io.NopCloser(strings.NewReader(tt.body)))
			req.ContentLength = tt.contentLength
			req.SetBasicAuth(devopsUser, testPassword)
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, req)
			assertStatus(t, rec, tt.wantStatus)
			assertContentType(t, rec, "application/json")
			if tt.wantStatus == http.StatusRequestEntityTooLarge {
				assertBody(t, rec, want)
				if n := len(d.recorded()); n != 0 {
					t.Fatalf("dispatcher called %d times", n)
				}
			}
		})
	}
	t.Run("default is 1 MiB", func(t *testing.T) {
		if s := New(Config{}, okReply(`{}`)); s.cfg.BodyLimit != 1<<20 {
			t.Fatalf("BodyLimit = %d", s.cfg.BodyLimit)
		}
	})
}

func TestTimeouts(t *testing.T) {
	bounds := func(got string) string {
		return `{"status":400,"error":"gateway:timeout.invalid","message":"The timeout <` + got +
			`> is not inside its allowed bounds <0ms - 60,000ms>","description":"Choose a timeout inside the bounds."}`
	}
	invalid := func(msg string) string {
		return `{"status":400,"error":"timeout.invalid","message":"` + msg +
			`","description":"Please choose a valid timeout."}`
	}
	tests := []struct {
		name        string
		query       string // raw query
		headers     string // envelope headers
		want        time.Duration
		wantHeader  string // Command.Headers["timeout"], "" = absent
		wantErrBody string
	}{
		{"default", "", `{}`, 10 * time.Second, "", ""},
		{"query ms", "timeout=500ms", `{}`, 500 * time.Millisecond, "500ms", ""},
		{"query bare seconds", "timeout=2", `{}`, 2 * time.Second, "2", ""},
		{"query minute", "timeout=1m", `{}`, time.Minute, "1m", ""},
		{"envelope seconds", "", `{"timeout":"20s"}`, 20 * time.Second, "20s", ""},
		{"envelope number", "", `{"timeout":5}`, 5 * time.Second, "5", ""},
		{"envelope wins over query", "timeout=5s", `{"timeout":"30s"}`, 30 * time.Second, "30s", ""},
		{"envelope key case", "", `{"Timeout":"3s"}`, 3 * time.Second, "3s", ""},
		{"upper bound", "timeout=60s", `{}`, time.Minute, "60s", ""},
		{"query above bound", "timeout=61s", `{}`, 0, "", bounds("61,000ms")},
		{"query bare above bound", "timeout=10000", `{}`, 0, "", bounds("10,000,000ms")},
		{"envelope above bound", "", `{"timeout":"2m"}`, 0, "", bounds("120,000ms")},
		{"envelope hours", "", `{"timeout":"1h"}`, 0, "", bounds("3,600,000ms")},
		{"envelope above bound despite valid query", "timeout=5s", `{"timeout":"61000ms"}`, 0, "", bounds("61,000ms")},
		{"query not a duration", "timeout=abc", `{}`, 0, "", invalid(`For input string: \"abc\"`)},
		{"query fraction", "timeout=1.5s", `{}`, 0, "", invalid(`For input string: \"1.5s\"`)},
		{"envelope negative", "", `{"timeout":"-5s"}`, 0, "", invalid("The duration must not be negative but was <-5s>!")},
		{"envelope negative bare", "", `{"timeout":-1}`, 0, "", invalid("The duration must not be negative but was <-1>!")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := okReply(responseJSON)
			s := newTestServer(t, d)
			path := "/devops/piggyback/connectivity"
			if tt.query != "" {
				path += "?" + tt.query
			}
			start := time.Now()
			rec := serve(t, s, request{path: path, body: envelopeBody(shard, tt.headers, retrieveCmd)})
			if tt.wantErrBody != "" {
				assertStatus(t, rec, http.StatusBadRequest)
				assertContentType(t, rec, "application/json")
				assertBody(t, rec, tt.wantErrBody)
				if n := len(d.recorded()); n != 0 {
					t.Fatalf("dispatcher called %d times", n)
				}
				return
			}
			end := time.Now()
			assertStatus(t, rec, http.StatusOK)
			c := d.onlyCall(t)
			if !c.hasDeadline {
				t.Fatal("dispatch context has no deadline")
			}
			if c.deadline.Before(start.Add(tt.want)) || c.deadline.After(end.Add(tt.want)) {
				t.Fatalf("deadline %v not within [%v, %v] + %v", c.deadline, start, end, tt.want)
			}
			if got := c.cmd.GetDeadlineUnixNano(); got != c.deadline.UnixNano() {
				t.Fatalf("DeadlineUnixNano = %d, ctx deadline %d", got, c.deadline.UnixNano())
			}
			got, ok := c.cmd.GetHeaders()["timeout"]
			if tt.wantHeader == "" && ok || tt.wantHeader != "" && got != tt.wantHeader {
				t.Fatalf("timeout header = %q (present %v), want %q", got, ok, tt.wantHeader)
			}
		})
	}
	t.Run("zero timeout expires at once", func(t *testing.T) {
		d := &fakeDispatcher{fn: func(ctx context.Context, _ string, _ *pb.Command) (*pb.Reply, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}}
		rec := serve(t, newTestServer(t, d), request{path: "/devops/piggyback/connectivity?timeout=0",
			body: envelopeBody(shard, `{}`, retrieveCmd)})
		assert408(t, rec)
	})
}

func TestAggregate(t *testing.T) {
	// Odd spacing proves aggregate=false passes the dispatcher's bytes through.
	const payload = `{ "type":"connectivity.responses:retrieveConnection",  "status":200 }`
	tests := []struct {
		name    string
		headers string
		want    string
	}{
		{"absent means true", `{}`, `{"connectivity":{"1":` + payload + `}}`},
		{"true", `{"aggregate":true}`, `{"connectivity":{"1":` + payload + `}}`},
		{"TRUE string", `{"aggregate":"TRUE"}`, `{"connectivity":{"1":` + payload + `}}`},
		{"false", `{"aggregate":false}`, payload},
		{"false string", `{"aggregate":"false"}`, payload},
		{"other text is false", `{"aggregate":"yes"}`, payload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := okReply(payload)
			rec := serve(t, newTestServer(t, d), request{path: "/devops/piggyback/connectivity",
				body: envelopeBody(shard, tt.headers, retrieveCmd)})
			assertStatus(t, rec, http.StatusOK)
			assertContentType(t, rec, "application/json")
			assertBody(t, rec, tt.want)
		})
	}
}

func TestUnknownCommandType(t *testing.T) {
	notParsable := func(typ string) string {
		return `{"type":"devops.responses:errorResponse","status":400,"serviceName":"connectivity","instance":"1",` +
			`"payload":{"status":400,"error":"json.type.notparsable","message":"ExecutePiggybackCommand with ` +
			`PiggybackCommand <` + typ + `> cannot be executed by this service as there is no mapping strategy for it!",` +
			`"description":"Check if you sent the JSON with the correct type."}}`
	}
	tests := []struct {
		name    string
		path    string
		headers string
		command string
		want    string
	}{
		{"unknown type", "/devops/piggyback/connectivity", `{"aggregate":false}`,
			`{"type":"things.commands:retrieveThing"}`, notParsable("things.commands:retrieveThing")},
		{"unknown type aggregated", "/devops/piggyback/connectivity", `{}`,
			`{"type":"connectivity.commands:nope"}`,
			`{"connectivity":{"1":` + notParsable("connectivity.commands:nope") + `}}`},
		{"missing type", "/devops/piggyback/connectivity", `{"aggregate":false}`, `{}`, notParsable("null")},
		{"null command", "/devops/piggyback/connectivity", `{"aggregate":false}`, `null`, notParsable("null")},
		{"poison pill is not supported", "/devops/piggyback/connectivity", `{"aggregate":false}`,
			`{"type":"poison-pill"}`, notParsable("poison-pill")},
		{"number type", "/devops/piggyback/connectivity/1", `{"aggregate":false}`, `{"type":7}`, notParsable("7")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := okReply(`{}`)
			rec := serve(t, newTestServer(t, d), request{path: tt.path,
				body: envelopeBody(shard, tt.headers, tt.command)})
			assertStatus(t, rec, http.StatusOK)
			assertContentType(t, rec, "application/json")
			assertBody(t, rec, tt.want)
			if n := len(d.recorded()); n != 0 {
				t.Fatalf("dispatcher called %d times", n)
			}
		})
	}
	t.Run("errorResponse names the command's instance", func(t *testing.T) {
		rec := serve(t, newTestServer(t, okReply(`{}`)), request{path: "/devops/piggyback",
			body: `{"instance":"9","targetActorSelection":"/x","headers":{},"piggybackCommand":{"type":"x:y"}}`})
		assertStatus(t, rec, http.StatusOK)
		want := strings.Replace(notParsable("x:y"), `"instance":"1"`, `"instance":"9"`, 1)
		assertBody(t, rec, `{"connectivity":{"9":`+want+`}}`)
	})
}

func TestReplies(t *testing.T) {
	const notFound = `{"status":404,"error":"connectivity:connection.notfound","message":"The Connection with ID 'c1' ` +
		`could not be found or requester had insufficient permissions to access it.","description":"Check if the ID ` +
		`of your requested Connection was correct and you have sufficient permissions."}`
	const parseErr = `{"status":400,"error":"json.field.missing","message":"JSON did not include required ` +
		`</connection/connectionType> field!","description":"Check if all required JSON fields were set."}`
	wrap := func(status int, payload string) string {
		return fmt.Sprintf(`{"type":"devops.responses:errorResponse","status":%d,"serviceName":"connectivity",`+
			`"instance":"1","payload":%s}`, status, payload)
	}
	internal := wrap(500, `{"status":500,"error":"connectivity:internalerror",`+
		`"message":"The connectivity service sent a malformed response.","description":"Please contact the service team."}`)
	tests := []struct {
		name  string
		reply *pb.Reply
		err   error
		want  string // "" = 408 null
	}{
		{"response", &pb.Reply{Kind: pb.Reply_RESPONSE, Status: 200, Payload: []byte(responseJSON)}, nil, responseJSON},
		{"error response", &pb.Reply{Kind: pb.Reply_RESPONSE, Status: 404, Payload: []byte(notFound)}, nil, notFound},
		{"parse error", &pb.Reply{Kind: pb.Reply_PARSE_ERROR, Status: 400, Payload: []byte(parseErr)}, nil,
			wrap(400, parseErr)},
		{"parse error status from payload", &pb.Reply{Kind: pb.Reply_PARSE_ERROR, Payload: []byte(parseErr)}, nil,
			wrap(400, parseErr)},
		{"no answer", &pb.Reply{Kind: pb.Reply_NO_ANSWER}, nil, ""},
		{"no route", nil, ditto.ErrNoRoute, ""},
		{"wrapped no route", nil, fmt.Errorf("lookup: %w", ditto.ErrNoRoute), ""},
		{"deadline", nil, context.DeadlineExceeded, ""},
		{"ditto error", nil, ditto.ConnectionNotFound("c1"), notFound},
		{"other error", nil, errors.New("cluster: 10.0.0.7:8090 unreachable"),
			wrap(503, `{"status":503,"error":"ask.error","message":"Asking the actor at </system/sharding/connection> failed.",`+
				`"description":"Please retry the performed action in order to improve resiliency."}`)},
		{"nil reply", nil, nil, internal},
		{"payload not JSON", &pb.Reply{Kind: pb.Reply_RESPONSE, Payload: []byte("{oops")}, nil, internal},
		{"empty payload", &pb.Reply{Kind: pb.Reply_RESPONSE}, nil, internal},
		{"parse error payload not an object", &pb.Reply{Kind: pb.Reply_PARSE_ERROR, Payload: []byte(`"x"`)}, nil, internal},
		{"unknown kind", &pb.Reply{Kind: pb.Reply_Kind(42), Payload: []byte(`{}`)}, nil, internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &fakeDispatcher{reply: tt.reply, err: tt.err}
			rec := serve(t, newTestServer(t, d), request{path: "/devops/piggyback/connectivity",
				body: envelopeBody(shard, `{"aggregate":false}`, retrieveCmd)})
			if tt.want == "" {
				assert408(t, rec)
				return
			}
			assertStatus(t, rec, http.StatusOK)
			assertContentType(t, rec, "application/json")
			assertBody(t, rec, tt.want)
			if strings.Contains(rec.Body.String(), "10.0.0.7") {
				t.Fatal("Go error text leaked into the response")
			}
		})
	}
	t.Run("real deadline", func(t *testing.T) {
		d := &fakeDispatcher{fn: func(ctx context.Context, _ string, _ *pb.Command) (*pb.Reply, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}}
		rec := serve(t, newTestServer(t, d), request{path: "/devops/piggyback/connectivity?timeout=20ms",
			body: envelopeBody(shard, `{}`, retrieveCmd)})
		assert408(t, rec)
	})
}

func TestCommandHeaders(t *testing.T) {
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	tests := []struct {
		name    string
		query   string
		headers string
		want    map[string]string // correlation-id "" = generated
	}{
		{"conversions", "", `{"Aggregate":false,"IS-GROUP-TOPIC":false,"ditto-sudo":true,"x-num":5,` +
			`"x-obj":{"a":[1, 2]},"x-null":null,"response-required":"false"}`,
			map[string]string{"aggregate": "false", "is-group-topic": "false", "ditto-sudo": "true", "x-num": "5",
				"x-obj": `{"a":[1,2]}`, "response-required": "false", "correlation-id": ""}},
		{"query headers", "response-required=false&correlation-id=q-1&foo=bar&timeout=3s", `{}`,
			map[string]string{"response-required": "false", "correlation-id": "q-1", "timeout": "3s"}},
		{"envelope correlation id wins", "correlation-id=q-1", `{"correlation-id":"env-1"}`,
			map[string]string{"correlation-id": "env-1"}},
		{"empty correlation id is replaced", "", `{"correlation-id":""}`, map[string]string{"correlation-id": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := okReply(responseJSON)
			path := "/devops/piggyback/connectivity"
			if tt.query != "" {
				path += "?" + tt.query
			}
			rec := serve(t, newTestServer(t, d), request{path: path, body: envelopeBody(shard, tt.headers, retrieveCmd),
				header: map[string]string{"X-Http-Header": "not forwarded"}})
			assertStatus(t, rec, http.StatusOK)
			got := d.onlyCall(t).cmd.GetHeaders()
			corr := got["correlation-id"]
			if rec.Header().Get("correlation-id") != corr {
				t.Fatalf("response correlation-id %q, command's %q", rec.Header().Get("correlation-id"), corr)
			}
			if tt.want["correlation-id"] == "" {
				if !uuid.MatchString(corr) {
					t.Fatalf("generated correlation-id %q is no UUID v4", corr)
				}
				got = copyWithout(got, "correlation-id")
				tt.want = copyWithout(tt.want, "correlation-id")
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("headers\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

func copyWithout(m map[string]string, key string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if k != key {
			out[k] = v
		}
	}
	return out
}

func TestCorrelationIDOnEarlyAnswers(t *testing.T) {
	rec := serve(t, newTestServer(t, okReply(`{}`)), request{path: "/devops/piggyback/things",
		body: envelopeBody(shard, `{"correlation-id":"c-408"}`, retrieveCmd)})
	assert408(t, rec)
	if got := rec.Header().Get("correlation-id"); got != "c-408" {
		t.Fatalf("correlation-id = %q", got)
	}
}
