package mapping

import (
	"strings"

	"github.com/dittoconn/dittoconn/internal/protocol"
)

const updateTwinDefaults = `{"content-type-blocklist":"application/vnd.eclipse-hono-empty-notification,application/vnd.eclipse-hono-device-provisioning-notification,application/vnd.eclipse-hono-dc-notification+json,application/vnd.eclipse-hono-delivery-failure-notification+json",` +
	`"dittoHeadersForMerge":{"response-required":false,"if-match":"*"}}`

// mergeCorrelationSuffix marks the merge command derived from a live
// response.
const mergeCorrelationSuffix = "-merge-into-twin"

// updateTwinMapper is the inbound "UpdateTwinWithLiveResponse" engine: a
// live retrieve response (Ditto Protocol) becomes a MergeThing of the
// retrieved value into the twin; anything else is dropped.
type updateTwinMapper struct {
	headers []namedTemplate // in headerTimeScope, modeKeep
	cfg     Config
}

func newUpdateTwinMapper(_ string, opts Options, cfg Config) (Mapper, error) {
	m := &updateTwinMapper{cfg: cfg}
	if o, ok := opts.object("dittoHeadersForMerge"); ok {
		for _, k := range o.Keys() {
			m.headers = append(m.headers, namedTemplate{strings.ToLower(k),
				compileIn(headerTimeScope, gojson.FormatAsString(o.Value(k)), modeKeep)})
		}
	}
	return m, nil
}

func (m *updateTwinMapper) MapIncoming(ext protocol.External) ([]protocol.Message, error) {
	text, err := payloadText(ext)
	if err != nil {
		return nil, nil
	}
	resp, t, err := parseMessage([]byte(text))
	if err != nil {
		return nil, nil
	}
	if resp.Status == 0 || t.Channel != "live" || t.Group != "things" || t.Criterion != "commands" || t.Action != "retrieve" {
		return nil, nil
	}
	lk := headerTimeLookup(ext, m.cfg)
	headers := map[string]string{}
	for _, kv := range m.headers {
		v, _, _ := kv.tmpl.resolve(lk)
		headers[kv.name] = v
	}
	if cid, ok := resp.Headers["correlation-id"]; ok {
		headers["correlation-id"] = cid + mergeCorrelationSuffix
	}
	headers["content-type"] = "application/merge-patch+json"
	path := resp.Path
	if path == "" {
		path = "/"
	}
	return []protocol.Message{{Topic: t.Namespace + "/" + t.Name + "/things/twin/commands/merge", Headers: headers,
		Path: path, Value: resp.Value}}, nil
}

func (*updateTwinMapper) MapOutgoing(protocol.Message) ([]protocol.External, error) { return nil, nil }
