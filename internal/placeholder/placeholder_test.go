package placeholder

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/model/rql"
	"github.com/dittoconn/dittoconn/internal/placeholder/template"
	"github.com/dittoconn/dittoconn/internal/protocol"
)

var fixed = time.Date(2021, 11, 17, 9, 44, 8, 123_000_000, time.UTC)

func thingValues(t *testing.T, topic, path string) *Values {
	t.Helper()
	m := &protocol.Message{Topic: topic, Path: path, Headers: map[string]string{
		"correlation-id": "corr-1", "Content-Type": "application/json", "device_id": "ns:dev-1",
		"empty": "", "csv": "a,b,,c,,", "spaced": "  x y \t", "json": `{"a":"1","tags":["t1","t2"],"items":[{"n":"i1"},{"n":"i2"}],"o":{"p":{"q":5}}}`,
	}}
	v := ForMessage(m, "my-conn")
	v.Time = fixed
	v.SubjectID = "integration:my-conn"
	v.SourceAddress = "telemetry/ns/dev-1"
	tp, err := protocol.ParseTopic(topic)
	if err == nil {
		msg := &protocol.Message{Topic: topic, Path: path, Value: json.RawMessage(`{"on":true,"level":3}`)}
		v.Thing, _ = protocol.ThingDoc(tp, msg)
	}
	return v
}

func TestResolve(t *testing.T) {
	ev := "org.eclipse.ditto/device-123/things/twin/events/modified"
	cases := []struct {
		name, topic, path, tpl, want string
	}{
		{"literal only", ev, "/", "plain/address", "plain/address"},
		{"thing id", ev, "/", "{{ thing:id }}", "org.eclipse.ditto:device-123"},
		{"thing parts", ev, "/", "{{thing:namespace}}/{{ thing:name }}", "org.eclipse.ditto/device-123"},
		{"entity", ev, "/", "{{ entity:id }}|{{ entity:namespace }}|{{ entity:name }}", "org.eclipse.ditto:device-123|org.eclipse.ditto|device-123"},
		{"policy", "ns/pol/policies/announcements/subjectDeletion", "/", "{{ policy:id }} {{ policy:name }} {{ entity:id }}", "ns:pol pol ns:pol"},
		{"feature", ev, "/features/lamp/properties/on", "{{ feature:id }}", "lamp"},
		{"header case-insensitive", ev, "/", "{{ header:content-type }} {{ header:CORRELATION-ID }}", "application/json corr-1"},
		{"connection", ev, "/", "{{ connection:id }}", "my-conn"},
		{"request", ev, "/", "{{ request:subjectId }}", "integration:my-conn"},
		{"source", ev, "/", "{{ source:address }}", "telemetry/ns/dev-1"},
		{"topic full", "org.eclipse.ditto/device-123/things/twin/commands/create", "/", "{{ topic:full }}", "org.eclipse.ditto/device-123/things/twin/commands/create"},
		{"topic parts", "org.eclipse.ditto/device-123/things/twin/commands/create", "/",
			"{{topic:namespace}}|{{topic:entityName}}|{{topic:entity-name}}|{{topic:group}}|{{topic:channel}}|{{topic:criterion}}|{{topic:action}}|{{topic:action-subject}}",
			"org.eclipse.ditto|device-123|device-123|things|twin|commands|create|create"},
		{"topic message", "org.eclipse.ditto/device-123/things/live/messages/hello.world", "/inbox/messages/hello.world",
			"{{topic:criterion}}|{{topic:subject}}|{{topic:action-subject}}", "messages|hello.world|hello.world"},
		{"topic policy channel", "ns/p/policies/commands/create", "/", "{{ topic:channel }}", "none"},
		{"resource", ev, "/attributes/a", "{{ resource:type }}:{{ resource:path }}", "thing:/attributes/a"},
		{"resource message", "ns/n/things/live/messages/x", "/inbox/messages/x", "{{ resource:type }}", "message"},
		{"resource root", ev, "", "{{ resource:path }}", "/"},
		{"time now", ev, "/", "{{ time:now }}", "2021-11-17T09:44:08.123Z"},
		{"time millis", ev, "/", "{{ time:now_epoch_millis }}", "1637142248123"},
		{"time offset", ev, "/", "{{ time:now-1h }}", "2021-11-17T08:44:08.123Z"},
		{"time truncate", ev, "/", "{{ time:now[h] }}", "2021-11-17T09:00:00Z"},
		{"time offset truncate", ev, "/", "{{ time:now+1d[d] }}", "2021-11-18T00:00:00Z"},
		{"time ms", ev, "/", "{{ time:now_epoch_millis-500ms[s] }}", "1637142247000"},
		{"time week", ev, "/", "{{ time:now[w] }}", "2021-11-15T00:00:00Z"},
		{"time month year", ev, "/", "{{ time:now[mo] }} {{ time:now-1y[y] }}", "2021-11-01T00:00:00Z 2020-01-01T00:00:00Z"},
		{"thing-json", ev, "/features/lamp/properties", "{{ thing-json:features/lamp/properties/level }} {{ thing-json:thingId }}", "3 org.eclipse.ditto:device-123"},
		// functions, with the documentation's examples
		{"substring-before default upper", ev, "/", "{{ thing:name | fn:substring-before('-') | fn:default('fallback') | fn:upper() }}", "DEVICE"},
		{"substring-before missing", ev, "/", "{{ thing:name | fn:substring-before('#') | fn:default('fallback') }}", "fallback"},
		{"substring-after", ev, "/", `{{ header:device_id | fn:substring-after(":") }}`, "dev-1"},
		{"default on missing header", ev, "/", "{{ header:nope | fn:default('x') }}", "x"},
		{"default with placeholder", ev, "/", "{{ header:nope | fn:default(thing:id) }}", "org.eclipse.ditto:device-123"},
		{"default keeps resolved", ev, "/", "{{ header:correlation-id | fn:default('x') }}", "corr-1"},
		{"function first", ev, "/", "{{ fn:default('first') }}", "first"},
		{"lower", ev, "/", "{{ header:content-type | fn:upper() | fn:lower() }}", "application/json"},
		{"trim", ev, "/", "[{{ header:spaced | fn:trim() }}]", "[x y]"},
		{"replace", ev, "/", "{{ thing:id | fn:replace(':', '/') }}", "org.eclipse.ditto/device-123"},
		{"replace all", ev, "/", "{{ thing:namespace | fn:replace('.', '') }}", "orgeclipseditto"},
		{"url-encode", ev, "/", "{{ header:spaced | fn:trim() | fn:url-encode() }}", "x+y"},
		{"url-encode java", ev, "/", "{{ fn:default('a~b*c/ä') | fn:url-encode() }}", "a%7Eb*c%2F%C3%A4"},
		{"url-decode", ev, "/", "{{ fn:default('a%2Fb+c') | fn:url-decode() }}", "a/b c"},
		{"base64", ev, "/", "{{ thing:name | fn:base64-encode() }}", "ZGV2aWNlLTEyMw=="},
		{"base64 round trip", ev, "/", "{{ thing:name | fn:base64-encode() | fn:base64-decode() }}", "device-123"},
		{"split join", ev, "/", "{{ header:csv | fn:split(',') | fn:join('+') }}", "a+b++c"},
		{"split first", ev, "/", "{{ header:csv | fn:split(',') }}", "a"},
		{"filter eq keeps", ev, "/", "{{ thing:id | fn:filter(header:correlation-id,'eq','corr-1') }}", "org.eclipse.ditto:device-123"},
		{"filter eq drops then default", ev, "/", "{{ thing:id | fn:filter(header:correlation-id,'eq','other') | fn:default('d') }}", "d"},
		{"filter ne", ev, "/", "{{ thing:id | fn:filter(header:correlation-id,'ne','other') }}", "org.eclipse.ditto:device-123"},
		{"filter exists 2 args", ev, "/", "{{ thing:id | fn:filter(header:correlation-id,'exists') }}", "org.eclipse.ditto:device-123"},
		{"filter exists false", ev, "/", "{{ thing:id | fn:filter(header:nope,'exists','false') }}", "org.eclipse.ditto:device-123"},
		{"filter like on value", ev, "/", "{{ thing:name | fn:filter('like','device-*|other') }}", "device-123"},
		{"filter like alternatives", ev, "/", "{{ thing:name | fn:filter('like','nope|dev?ce-12?') }}", "device-123"},
		{"filter eq on value", ev, "/", "{{ thing:name | fn:filter('eq','device-123') }}", "device-123"},
		{"filter exists 1 arg", ev, "/", "{{ thing:name | fn:filter('exists') }}", "device-123"},
		{"delete in default ignored", ev, "/", "{{ header:nope | fn:default('x') | fn:upper() }}", "X"},
		{"format", ev, "/", "{{ header:json | fn:format('{a}-{/o/p/q}') }}", "1-5"},
		{"format section", ev, "/", "{{ header:json | fn:format('{#items}{n};{/items}') | fn:join('') }}", "i1;i2;"},
		{"format array", ev, "/", "{{ header:json | fn:format('\\{{tags}\\}') | fn:join(',') }}", "{t1},{t2}"},
		{"format missing", ev, "/", "[{{ header:json | fn:format('{zz}') }}]", "[]"},
		{"unclosed braces stay", ev, "/", "a{{b", "a{{b"},
		{"multiple", ev, "/features/f", "things/{{ thing:namespace }}/{{ thing:name }}/{{ feature:id }}/{{ topic:action }}", "things/org.eclipse.ditto/device-123/f/modified"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := thingValues(t, tc.topic, tc.path)
			got, err := template.Resolve(tc.tpl, v)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %q want %q", got, tc.want)
			}
		})
	}
}

func TestResolveFailures(t *testing.T) {
	ev := "ns/n/things/twin/events/modified"
	cases := []struct {
		tpl  string
		want error
		expr string
	}{
		{"{{ header:nope }}", template.ErrUnresolved, "header:nope"},
		{"a/{{ feature:id }}", template.ErrUnresolved, "feature:id"},
		{"{{ policy:id }}", template.ErrUnresolved, "policy:id"},
		{"{{ topic:subject }}", template.ErrUnresolved, "topic:subject"},
		{"{{ thing:name | fn:substring-before('#') }}", template.ErrUnresolved, "thing:name"},
		{"{{ thing:id | fn:filter(header:nope,'exists') }}", template.ErrUnresolved, "thing:id"},
		{"{{ thing:id | fn:delete() }}", template.ErrDeleted, "thing:id | fn:delete()"},
		{"{{ thing:id | fn:delete() | fn:default('x') }}", template.ErrDeleted, ""},
		{"{{ fn:upper() }}", template.ErrUnresolved, "fn:upper()"},
		{"{{ fn:default('1') | fn:base64-decode() }}", template.ErrUnresolved, ""},
		{"{{ fn:default('%zz') | fn:url-decode() }}", template.ErrUnresolved, ""},
	}
	for _, tc := range cases {
		t.Run(tc.tpl, func(t *testing.T) {
			v := thingValues(t, ev, "/attributes/x")
			_, err := template.Resolve(tc.tpl, v)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v want %v", err, tc.want)
			}
			var pe *template.Error
			if !errors.As(err, &pe) || tc.expr != "" && pe.Expr != tc.expr {
				t.Fatalf("expr %+v", pe)
			}
			d, ok := template.AsDitto(err)
			if !ok || d.Status != 400 {
				t.Fatalf("template.AsDitto %v", d)
			}
			if errors.Is(err, template.ErrUnresolved) && (d.Code != "placeholder:unresolved" || !strings.Contains(d.Message, "'"+pe.Expr+"'")) {
				t.Fatalf("ditto %+v", d)
			}
		})
	}
}

func TestResolveAll(t *testing.T) {
	v := thingValues(t, "ns/n/things/twin/events/modified", "/")
	tpl, err := Compile("{{ header:csv | fn:split(',') }}-{{ fn:default('x,y') | fn:split(',') }}")
	if err != nil {
		t.Fatal(err)
	}
	got, err := tpl.ResolveAll(v)
	if err != nil || strings.Join(got, " ") != "a-x a-y b-x b-y -x -y c-x c-y" {
		t.Fatalf("%q %v", got, err)
	}
	if tpl.String() == "" {
		t.Fatal("no source")
	}
	if _, err := tpl.ResolveAll(&Values{}); !errors.Is(err, template.ErrUnresolved) {
		t.Fatal(err)
	}
}

func TestNilResolverAndWallClock(t *testing.T) {
	if _, err := template.Resolve("{{ thing:id }}", nil); !errors.Is(err, template.ErrUnresolved) {
		t.Fatal(err)
	}
	got, err := template.Resolve("{{ time:now }}", nil)
	if err != nil {
		t.Fatal(err)
	}
	if ts, err := time.Parse(time.RFC3339Nano, got); err != nil || time.Since(ts) > time.Minute {
		t.Fatalf("%q %v", got, err)
	}
	var nilValues *Values
	if _, ok := nilValues.Lookup("thing", "id"); ok {
		t.Fatal("nil values resolved")
	}
}

// Values must be usable as the rql placeholder source of a target filter.
func TestValuesAsRQLResolver(t *testing.T) {
	v := thingValues(t, "ns/n/things/twin/events/modified", "/attributes/x")
	var r rql.Resolver = v
	p, err := rql.CompileString(`and(eq(topic:action,"modified"),like(resource:path,"/attributes/*"),eq(header:correlation-id,"corr-1"))`)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Match(v.Thing, r) {
		t.Fatal("no match")
	}
}

func BenchmarkResolve(b *testing.B) {
	m := &protocol.Message{Topic: "ns/dev/things/twin/events/modified", Path: "/features/f/properties/x",
		Headers: map[string]string{"correlation-id": "c"}}
	v := ForMessage(m, "conn")
	tpl, err := Compile("telemetry/{{ thing:namespace }}/{{ thing:name | fn:upper() }}/{{ feature:id }}/{{ header:correlation-id | fn:default('none') }}")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tpl.Resolve(v); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzResolve(f *testing.F) {
	for _, s := range []string{
		"{{ thing:id }}", "a/{{ header:x | fn:default('y') | fn:upper() }}/b",
		"{{ fn:default('a,b') | fn:split(',') | fn:join('-') }}",
		"{{ thing:name | fn:filter(header:x,'like','a*|b?') }}",
		"{{ header:j | fn:format('{#a}{.}{/a}{/b/c}\\{') }}",
		"{{ time:now-1h[d] }}", "{{ fn:default('%') | fn:url-decode() }}", "{{{{}}}}", "{{ | }}",
		"{{ thing:id | fn:replace('', 'x') }}",
	} {
		f.Add(s, `{"a":[1,"x",{"y":null}],"b":{"c":2}}`)
	}
	f.Fuzz(func(t *testing.T, tpl, header string) {
		v := thingValues(t, "ns/n/things/twin/events/modified", "/features/f")
		v.Headers = map[string]string{"x": header, "j": header}
		c, err := Compile(tpl)
		if err != nil {
			if _, ok := template.AsDitto(err); !ok {
				t.Fatalf("compile error without Ditto form: %v", err)
			}
			return
		}
		if _, err := c.Resolve(v); err != nil {
			if _, ok := template.AsDitto(err); !ok {
				t.Fatalf("resolve error without Ditto form: %v", err)
			}
		}
		_, _ = c.ResolveAll(v)
	})
}
