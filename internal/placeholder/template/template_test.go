package template

import (
	"errors"
	"strings"
	"testing"
)

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		tpl  string
		want error
		code string
	}{
		{"{{ foo:bar }}", ErrUnknown, "placeholder:unresolved"},
		{"{{ thing:uuid }}", ErrUnknown, "placeholder:unresolved"},
		{"{{ nocolon }}", ErrUnknown, "placeholder:unresolved"},
		{"{{ header: }}", ErrUnknown, "placeholder:unresolved"},
		{"{{ time:later }}", ErrUnknown, "placeholder:unresolved"},
		{"{{ time:now+1x }}", ErrUnknown, "placeholder:unresolved"},
		{"{{ thing:id | fn:reverse() }}", ErrFunctionUnknown, "placeholder:function.unknown"},
		{"{{ thing:id | upper() }}", ErrFunctionUnknown, "placeholder:function.unknown"},
		{"{{ thing:id | fn:upper('x') }}", ErrSignature, "placeholder:function.signature.invalid"},
		{"{{ thing:id | fn:default() }}", ErrSignature, "placeholder:function.signature.invalid"},
		{"{{ thing:id | fn:default('a','b') }}", ErrSignature, ""},
		// Ditto: an unterminated quote fails the stage pattern (unresolved)
		{"{{ thing:id | fn:default('a) }}", ErrUnknown, "placeholder:unresolved"},
		// Ditto resolves a placeholder argument like the pipeline's input
		{"{{ thing:id | fn:default(unknown:x) }}", ErrUnknown, "placeholder:unresolved"},
		{"{{ thing:id | fn:default(nocolon) }}", ErrSignature, ""},
		{"{{ thing:id || fn:upper() }}", ErrUnknown, "placeholder:unresolved"},
		{"{{ thing:id | }}", ErrFunctionUnknown, "placeholder:function.unknown"},
		{"{{ | thing:id }}", ErrUnknown, "placeholder:unresolved"},
		{"{{ thing:id | fn:default('a' 'b') }}", ErrSignature, ""},
		{"{{ thing:id | fn:upper }}", ErrSignature, ""},
		{"{{ thing:id | fn:format('{#a}x') }}", ErrSignature, ""},
		{"{{ thing:id" + strings.Repeat(" | fn:upper()", MaxFunctions+1) + " }}", ErrTooComplex, "placeholder:function.too.complex"},
	}
	for _, tc := range cases {
		t.Run(tc.tpl, func(t *testing.T) {
			_, err := Compile(tc.tpl)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v want %v", err, tc.want)
			}
			if d, ok := AsDitto(err); !ok || tc.code != "" && d.Code != tc.code {
				t.Fatalf("ditto %+v", d)
			}
		})
	}
	if _, err := Compile("{{ thing:id" + strings.Repeat(" | fn:upper()", MaxFunctions) + " }}"); err != nil {
		t.Fatalf("10 functions refused: %v", err)
	}
}

// TestSets pins the placeholders of Ditto's sets: Connectivity is
// Resolvers.getPlaceholders(); All adds policy:, source: and the
// topic:entity-name alias, and contains every validation set.
func TestSets(t *testing.T) {
	names := map[string][]string{
		"header":     {"x", "mqtt.topic", "mqtt.qos", "mqtt.retain"},
		"thing":      {"id", "namespace", "name"},
		"policy":     {"id", "namespace", "name"},
		"entity":     {"id", "namespace", "name"},
		"feature":    {"id"},
		"thing-json": {"attributes/a"},
		"topic":      {"full", "namespace", "entityName", "group", "channel", "criterion", "action", "subject", "action-subject"},
		"resource":   {"type", "path"},
		"time":       {"now", "now_epoch_millis", "now-1ms", "now+2s", "now-3m", "now+4h", "now-5d", "now+6w", "now-7mo", "now+8y", "now[ms]", "now_epoch_millis-1h[h]", "now+1d[d]-2h[m]", "now[s][y]"},
		"request":    {"subjectId"},
		"connection": {"id"},
		"source":     {"address"},
	}
	for prefix, ns := range names {
		for _, name := range ns {
			if !Known(prefix, name) {
				t.Errorf("%s:%s not known", prefix, name)
			}
			if in := Connectivity.Supports(prefix, name); in == (prefix == "policy" || prefix == "source") {
				t.Errorf("Connectivity.Supports(%s:%s) = %v", prefix, name, in)
			}
		}
	}
	for _, bad := range [][2]string{{"header", ""}, {"thing", "uuid"}, {"time", "later"}, {"fn", "upper()"}, {"nope", "x"}} {
		if Known(bad[0], bad[1]) {
			t.Errorf("%s:%s known", bad[0], bad[1])
		}
	}
	if !Known("topic", "entity-name") || Connectivity.Supports("topic", "entity-name") {
		t.Error("topic:entity-name is a run-time alias only")
	}
	if mqtt := (Set{MQTT3Header}); !mqtt.Supports("header", "mqtt.qos") || mqtt.Supports("header", "x") {
		t.Error("MQTT3Header")
	}
	for _, s := range []Set{Connectivity, {MQTT3Header}, {Source, Header}, {Thing, Policy, Entity, Feature}} {
		for _, d := range s {
			samples := d.names
			if samples == nil {
				samples = []string{"now", "x"}
			}
			for _, n := range samples {
				if d.Supports(n) && !All.Supports(d.Prefix, n) {
					t.Errorf("%s:%s validates but is not in All", d.Prefix, n)
				}
			}
		}
	}
	for _, fn := range []string{"filter", "default", "substring-before", "substring-after", "lower", "upper", "trim",
		"url-encode", "url-decode", "base64-encode", "base64-decode", "delete", "replace", "split", "join", "format"} {
		if _, ok := functions[fn]; !ok {
			t.Errorf("function %s missing", fn)
		}
	}
	if len(Functions()) != len(functions) {
		t.Error("Functions")
	}
}

func TestResolveConnectionID(t *testing.T) {
	for in, want := range map[string]string{
		"{{connection:id}}:ack":                      "c-1:ack",
		"{{ connection:id }}/{{connection:id}}":      "c-1/c-1",
		"{{ connection:id | fn:upper() }}":           "C-1",
		"plain":                                      "plain",
		"{{ header:x | fn:default(connection:id) }}": "",
		"{{ thing:id }}":                             "",
		"{{ connection:id | fn:delete() }}":          "",
		"{{ connection:name }}":                      "",
	} {
		got, ok := ResolveConnectionID(in, "c-1")
		if ok != (want != "") || got != want {
			t.Errorf("%s: %q %v, want %q", in, got, ok, want)
		}
	}
}

func TestConstantAndReplaced(t *testing.T) {
	for in, constant := range map[string]bool{"a": true, "a{{b": true, "": true, "x/{{ thing:id }}": false} {
		tp, err := Compile(in)
		if err != nil || tp.IsConstant() != constant || HasPlaceholders(in) == constant {
			t.Errorf("%q: constant %v, HasPlaceholders %v, %v", in, tp.IsConstant(), HasPlaceholders(in), err)
		}
	}
	tp, err := Compile("t_{{ thing:id | fn:upper() }}#{{ header:p }}")
	if err != nil {
		t.Fatal(err)
	}
	if got := tp.ReplaceExpressions("X"); got != "t_X#X" {
		t.Errorf("ReplaceExpressions: %q", got)
	}
}
