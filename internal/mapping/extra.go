package mapping

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/dittoconn/dittoconn/internal/ojson"
	"github.com/dittoconn/dittoconn/internal/protocol"
)

// FieldSelector is a parsed Ditto field selector ("attributes/location,
// features/temp(properties/value)"): one JSON pointer (as keys) per field.
type FieldSelector [][]string

// ParseFieldSelector parses a comma-separated field selector with Ditto's
// parentheses groups.
func ParseFieldSelector(s string) FieldSelector { return parseFieldSelector(s) }

// SignalExtra is dittoconn's stand-in for the enrichment of a target topic's
// extraFields: Ditto reads the selected fields from the twin, dittoconn has
// no twin and selects them from what the signal itself says about the thing
// — the value at its path (thing events and live commands; not messages or
// deletions), thingId, _namespace, _revision, _modified — merged with the
// extra the signal already carries (which the signal's own values win
// over). The result is the "extra" object in selector order; ok is false
// when the signal is not about a thing or nothing selected is known.
func SignalExtra(sel FieldSelector, m *protocol.Message) (json.RawMessage, bool) {
	t, err := parseTopic(m.Topic)
	if err != nil || t.Group != "things" {
		return nil, false
	}
	doc := ojson.NewObject()
	if len(m.Value) > 0 && t.Criterion != "messages" && !strings.HasSuffix(t.Action, "deleted") {
		v, err := gojson.Parse(m.Value)
		if err != nil {
			return nil, false
		}
		if keys := pointerKeys(m.Path); len(keys) == 0 {
			if o, isObj := v.(*ojson.Object); isObj {
				doc = o
			}
		} else {
			doc.SetPointer(keys, v)
		}
	}
	doc.Set("thingId", gojson.Quote(t.entityID()))
	doc.Set("_namespace", gojson.Quote(t.Namespace))
	if m.Revision != 0 {
		doc.Set("_revision", json.RawMessage(strconv.FormatInt(m.Revision, 10)))
	}
	if m.Timestamp != "" {
		doc.Set("_modified", gojson.Quote(m.Timestamp))
	}
	if len(m.Extra) > 0 {
		if carried, err := gojson.ParseObject(m.Extra); err == nil {
			doc = mergeObjects(doc, carried)
		}
	}
	out := selectFields(doc, sel)
	if out.Len() == 0 {
		return nil, false
	}
	return gojson.Marshal(out), true
}
