package template

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// fixedValues resolves every placeholder but header:miss* to a value derived
// from its name, at a fixed instant.
type fixedValues struct{}

func (fixedValues) Lookup(prefix, name string) (string, bool) {
	if strings.HasPrefix(name, "miss") {
		return "", false
	}
	return prefix + "=" + name + ",a,b", true
}

func (fixedValues) Now() time.Time { return time.Date(2021, 11, 17, 9, 44, 8, 0, time.UTC) }

// dump writes the parse of t: literals, references and function calls.
func dump(t *Template) string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.expr == nil {
			fmt.Fprintf(&b, "lit(%q)", p.lit)
			continue
		}
		b.WriteString("expr(")
		if r := p.expr.first; r != nil {
			fmt.Fprintf(&b, "ref(%q,%q)", r.prefix, r.name)
		}
		for _, f := range p.expr.fns {
			fmt.Fprintf(&b, "|%s(", f.name)
			for _, a := range f.args {
				if a.isRef {
					fmt.Fprintf(&b, "ref(%q,%q),", a.ref.prefix, a.ref.name)
				} else {
					fmt.Fprintf(&b, "%q,", a.lit)
				}
			}
			b.WriteString(")")
		}
		b.WriteString(")")
	}
	return b.String()
}

// refs lists every placeholder t reads, also as function arguments.
func refs(t *Template) []*ref {
	var out []*ref
	for _, p := range t.parts {
		if p.expr == nil {
			continue
		}
		if p.expr.first != nil {
			out = append(out, p.expr.first)
		}
		for _, f := range p.expr.fns {
			for _, a := range f.args {
				if a.isRef {
					out = append(out, a.ref)
				}
			}
		}
	}
	return out
}

// exprPattern is the pattern nextExpr implements without a regexp.
var exprPattern = regexp.MustCompile(`\{\{(.*?)}}`)

// validationSets are the sets internal/model validates with.
var validationSets = []Set{Connectivity, {Header}, {MQTT3Header}, {Source}, {Source, Header},
	{Thing, Policy, Entity}, {Thing, Policy, Entity, Feature}, {Connection},
	{Topic, Resource, Time, Entity, Thing, Feature}}

// FuzzValidationMatchesResolution holds validation (a Set's Compile) and
// resolution (Compile, every placeholder) to one parse: a template a set
// accepts compiles at run time to the same pipeline and resolves alike; one
// a set rejects is rejected at run time for the same reason, unless the
// reason is only a placeholder outside the set.
func FuzzValidationMatchesResolution(f *testing.F) {
	for _, s := range []string{
		"{{ thing:id }}", "a/{{ header:x | fn:default('y') | fn:upper() }}/b", "{{ header:x ) | fn:upper() }}",
		"{{ fn:default('a,b') | fn:split(',') | fn:join('-') }}", "{{ thing:name | fn:filter(header:x,'like','a*|b?') }}",
		"{{ header:j | fn:format('{#a}{.}{/a}') }}", "{{ time:now-1h[d] }}", "{{ source:address }}", "{{ | }}",
		"{{ header:mqtt.topic }}", "{{ header:a | fn:default(policy:id) }}", "{{ header:a || fn:upper() }}",
		"{{ header:a | fn:default('a) }}", "{{ connection:id }}:ack", "{{ topic:entity-name }}", "{{{{}}}}",
		"{{ header:miss | fn:delete() }}", "{{ a\n{{ header:b }}", "{{{ header:c }}}}", "x}}{{\n}}{{y}}", "{{ header:a | fn:replace(\"|\", '(') }}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tpl string) {
		// expressions are found as exprPattern finds them
		var spans [][]int
		for from := 0; ; {
			start, end, ok := nextExpr(tpl, from)
			if !ok {
				break
			}
			spans = append(spans, []int{start, end})
			from = end
		}
		want := exprPattern.FindAllStringIndex(tpl, -1)
		if fmt.Sprint(spans) != fmt.Sprint(want) {
			t.Fatalf("expressions at %v, exprPattern finds %v", spans, want)
		}
		run, runErr := Compile(tpl)
		if runErr != nil {
			if _, ok := AsDitto(runErr); !ok {
				t.Fatalf("run-time compile error without Ditto form: %v", runErr)
			}
		} else if partial := All.CompilePartial(tpl); dump(partial) != dump(run) {
			t.Fatalf("partial parse differs:\n%s\n%s", dump(partial), dump(run))
		}
		for _, set := range validationSets {
			v, err := set.Compile(tpl)
			if err == nil {
				if runErr != nil {
					t.Fatalf("validates with %v but run time refuses: %v", set, runErr)
				}
				if dump(v) != dump(run) {
					t.Fatalf("parses differ:\nvalidation %s\nrun time   %s", dump(v), dump(run))
				}
				got, gotErr := v.ResolveAll(fixedValues{})
				want, wantErr := run.ResolveAll(fixedValues{})
				if fmt.Sprint(got, gotErr) != fmt.Sprint(want, wantErr) {
					t.Fatalf("resolutions differ: %q %v / %q %v", got, gotErr, want, wantErr)
				}
				continue
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("validation error without Ditto form: %v", err)
			}
			if runErr == nil {
				// only a placeholder outside the set may be the reason
				if !errors.Is(err, ErrUnknown) {
					t.Fatalf("validation refuses (%v) what run time compiles", err)
				}
				outside := false
				for _, r := range refs(run) {
					outside = outside || !set.Supports(r.prefix, r.name)
				}
				if !outside {
					t.Fatalf("validation refuses (%v) a template whose placeholders are all in its set", err)
				}
				continue
			}
			// the same error, or a placeholder outside the set found first
			if !errors.Is(err, ErrUnknown) && err.Error() != runErr.Error() {
				t.Fatalf("refused for different reasons: %v / %v", err, runErr)
			}
		}
	})
}
