package mapping

import (
	"errors"
	"time"

	"github.com/dittoconn/dittoconn/internal/placeholder/template"
)

// The mappers and mapping conditions compile their templates once, with the
// service's placeholder engine; what differs per use is which placeholders
// exist there (a template.Set) and how an expression that resolves to
// nothing is treated (a resolveMode).

// lookup resolves one placeholder ("header", "device_id"); ok=false when it
// has no value.
type lookup func(prefix, name string) (string, bool)

// values are the placeholder values of one message; time: placeholders
// resolve at now. Which placeholders a template may use is the Set it was
// compiled with.
type values struct {
	lk  lookup
	now func() time.Time
}

// Lookup implements template.Resolver.
func (s values) Lookup(prefix, name string) (string, bool) { return s.lk(prefix, name) }

// Now implements template.Clock.
func (s values) Now() time.Time {
	if s.now == nil {
		return time.Now()
	}
	return s.now()
}

var errUnresolved = errors.New("placeholder could not be resolved")

// resolveMode says what happens to a template whose expression resolves to
// nothing or does not compile in its Set.
type resolveMode int

const (
	modeStrict   resolveMode = iota // error (PlaceholderFilter.apply)
	modeOptional                    // whole template absent (applyOrElseDelete, resolver.resolve)
	modeKeep                        // the expression is left as written (resolvePartially)
)

// compiled is a template compiled once for the placeholders of its Set,
// resolved per message in a resolveMode.
type compiled struct {
	t    *template.Template // nil: does not compile in its Set
	mode resolveMode
}

func compileIn(set template.Set, tmpl string, mode resolveMode) compiled {
	if mode == modeKeep {
		return compiled{t: set.CompilePartial(tmpl), mode: mode}
	}
	t, err := set.Compile(tmpl)
	if err != nil {
		t = nil
	}
	return compiled{t: t, mode: mode}
}

// resolve resolves every {{ ... }}. ok=false (modeOptional) means the
// template resolved to nothing.
func (c compiled) resolve(r template.Resolver) (string, bool, error) {
	if c.mode == modeKeep {
		return c.t.ResolvePartial(r), true, nil
	}
	var out string
	err := errUnresolved
	if c.t != nil {
		out, err = c.t.Resolve(r)
	}
	switch {
	case err == nil:
		return out, true, nil
	case c.mode == modeStrict:
		return "", false, errUnresolved
	}
	return "", false, nil
}

// namedTemplate is a header's name and its value template.
type namedTemplate struct {
	name string
	tmpl compiled
}

// headersOnly is the Set of templates that may use only header:.
var headersOnly = template.Set{template.Header}
