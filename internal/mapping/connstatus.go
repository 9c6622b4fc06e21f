package mapping

import (
	"github.com/dittoconn/dittoconn/internal/placeholder/template"

	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/dittoconn/dittoconn/internal/ojson"
	"github.com/dittoconn/dittoconn/internal/protocol"
)

// connectionStatusMapper is the inbound "ConnectionStatus" engine: Hono's
// ttd and creation-time headers become a ModifyFeature (or, for ttd=0, a
// ModifyFeatureProperty of readyUntil) on the configured thing. Messages
// without usable headers are dropped, not failed, as in Ditto.
type connectionStatusMapper struct {
	thingID, featureID compiled // header: only, modeStrict
}

const connectionStatusDefinition = "org.eclipse.ditto:ConnectionStatus:1.0.0"

// distantFuture is readyUntil for ttd=-1 (Instant.ofEpochSecond(253402300799)).
var distantFuture = time.Unix(253402300799, 0)

func newConnectionStatusMapper(id string, opts Options, _ Config) (Mapper, error) {
	thingID, ok := opts.String("thingId")
	if !ok {
		return nil, configInvalid("mapper <%s>: the property 'thingId' is missing", id)
	}
	if !template.HasPlaceholders(thingID) && !validThingID(thingID) {
		return nil, configInvalid("mapper <%s>: thing ID <%s> is not valid", id, thingID)
	}
	featureID, ok := opts.String("featureId")
	if !ok {
		featureID = "ConnectionStatus"
	}
	return &connectionStatusMapper{thingID: compileIn(headersOnly, thingID, modeStrict),
		featureID: compileIn(headersOnly, featureID, modeStrict)}, nil
}

// validThingID checks the namespace:name form loosely (the full entity id
// rules live in the model package's validation).
func validThingID(s string) bool {
	ns, name, ok := strings.Cut(s, ":")
	return ok && name != "" && !strings.ContainsAny(ns, "/ ") && !strings.Contains(name, "/")
}

func (m *connectionStatusMapper) MapIncoming(ext protocol.External) ([]protocol.Message, error) {
	lk := values{lk: func(_, name string) (string, bool) {
		return headerIgnoreCase(ext.Headers, name)
	}}
	thingID, _, err := m.thingID.resolve(lk)
	if err != nil || !validThingID(thingID) {
		return nil, nil
	}
	featureID, _, err := m.featureID.resolve(lk)
	if err != nil {
		return nil, nil
	}
	creation, err1 := strconv.ParseInt(ext.Headers["creation-time"], 10, 64)
	ttd, err2 := strconv.ParseInt(ext.Headers["ttd"], 10, 64)
	if err1 != nil || err2 != nil || creation < 0 || ttd < -1 {
		return nil, nil
	}
	ns, name, _ := strings.Cut(thingID, ":")
	headers := map[string]string{"response-required": "false", "requested-acks": "[]"}
	if cid, ok := ext.Headers["correlation-id"]; ok {
		headers["correlation-id"] = cid
	}
	msg := protocol.Message{Topic: ns + "/" + name + "/things/twin/commands/modify", Headers: headers}
	since := time.UnixMilli(creation)
	if ttd == 0 {
		msg.Path = "/features/" + featureID + "/properties/status/readyUntil"
		msg.Value = gojson.Quote(javaInstant(since))
		return []protocol.Message{msg}, nil
	}
	until := distantFuture
	if ttd > 0 {
		until = time.UnixMilli(creation + ttd*1000)
	}
	status := ojson.NewObject()
	status.Set("readySince", gojson.Quote(javaInstant(since)))
	status.Set("readyUntil", gojson.Quote(javaInstant(until)))
	props := ojson.NewObject()
	props.Set("status", status)
	feature := ojson.NewObject()
	feature.Set("definition", []any{gojson.Quote(connectionStatusDefinition)})
	feature.Set("properties", props)
	msg.Path = "/features/" + featureID
	msg.Value = json.RawMessage(gojson.Marshal(feature))
	return []protocol.Message{msg}, nil
}

func (*connectionStatusMapper) MapOutgoing(protocol.Message) ([]protocol.External, error) {
	return nil, nil
}
