package dittoemu

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// validator checks frames against Ditto's protocol JSON schemas
// (../shared/ditto-reference/jsonschema): errors, acknowledgements,
// aggregated acknowledgements, announcements, responses, else the envelope.
type validator struct {
	schemas map[string]*jsonschema.Schema
}

func newValidator(t testing.TB, dir string) *validator {
	if dir == "" {
		dir = filepath.Join(moduleRoot(), "..", "shared", "ditto-reference", "jsonschema")
	}
	v := &validator{schemas: map[string]*jsonschema.Schema{}}
	if _, err := os.Stat(filepath.Join(dir, "protocol-envelope.json")); err != nil {
		t.Logf("dittoemu: Ditto's JSON schemas not found in %s: frames are not validated", dir)
		return v
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for _, name := range []string{"envelope", "response", "error_response", "ack", "acks", "announcement"} {
		s, err := c.Compile(filepath.Join(dir, "protocol-"+name+".json"))
		if err != nil {
			t.Fatalf("dittoemu: compiling schema %s: %v", name, err)
		}
		v.schemas[name] = s
	}
	return v
}

// Enabled reports whether frames are validated.
func (v *validator) enabled() bool { return len(v.schemas) > 0 }

func (v *validator) check(e *Emulator, dir string, raw []byte) {
	if !v.enabled() {
		return
	}
	if err := v.validate(raw); err != nil {
		e.violation(dir, raw, err)
	}
}

func (v *validator) validate(raw []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	var head struct {
		Topic  string          `json:"topic"`
		Status *int            `json:"status"`
		Value  json.RawMessage `json:"value"`
	}
	_ = json.Unmarshal(raw, &head)
	// Ditto's envelope schema has no null among the value types, yet a merge
	// deleting a member carries "value": null (Ditto's own generated merge
	// examples do): such a value is not held against the frame.
	// The same holds for the 204 responses to ModifyAttributes, ModifyFeatures
	// and ModifyFeature, which Ditto writes with "value": null.
	if obj, ok := inst.(map[string]any); ok && string(head.Value) == "null" &&
		(strings.HasSuffix(head.Topic, "/commands/merge") || strings.HasSuffix(head.Topic, "/events/merged") ||
			head.Status != nil && *head.Status == 204) {
		delete(obj, "value")
	}
	return v.schemas[schemaFor(head.Topic, head.Status != nil)].Validate(inst)
}

func schemaFor(topic string, hasStatus bool) string {
	segs := strings.Split(topic, "/")
	last := segs[len(segs)-1]
	switch {
	case last == "errors":
		return "error_response"
	case last == "acks":
		return "acks"
	case len(segs) >= 2 && segs[len(segs)-2] == "acks":
		return "ack"
	case len(segs) >= 2 && segs[len(segs)-2] == "announcements":
		return "announcement"
	case hasStatus:
		return "response"
	}
	return "envelope"
}

// moduleRoot is the directory of go.mod above the working directory.
func moduleRoot() string {
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}
