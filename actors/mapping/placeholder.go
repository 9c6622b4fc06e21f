package mapping

import (
	"errors"
	"time"

	"github.com/dittoconn/dittoconn/actors/placeholder/template"
)

// The mappers and mapping conditions resolve their templates with the
// service's placeholder engine; what differs per use is which placeholders
// exist there (a scope) and how an expression that resolves to nothing is
// treated (a resolveMode).

// lookup resolves one placeholder ("header", "device_id"); ok=false when it
// has no value.
type lookup func(prefix, name string) (string, bool)

// scope is the placeholders of one kind of template and their values; time:
// placeholders resolve at now.
type scope struct {
	set template.Set
	lk  lookup
	now func() time.Time
}

// Lookup implements template.Resolver.
func (s scope) Lookup(prefix, name string) (string, bool) { return s.lk(prefix, name) }

// Now implements template.Clock.
func (s scope) Now() time.Time {
	if s.now == nil {
		return time.Now()
	}
	return s.now()
}

var errUnresolved = errors.New("placeholder could not be resolved")

// resolveMode says what happens to a template whose expression resolves to
// nothing or does not compile in its scope.
type resolveMode int

const (
	modeStrict   resolveMode = iota // error (PlaceholderFilter.apply)
	modeOptional                    // whole template absent (applyOrElseDelete, resolver.resolve)
	modeKeep                        // the expression is left as written (resolvePartially)
)

// resolveTemplate resolves every {{ ... }} in tmpl. ok=false (modeOptional)
// means the template resolved to nothing.
func resolveTemplate(tmpl string, sc scope, mode resolveMode) (string, bool, error) {
	if mode == modeKeep {
		return sc.set.CompilePartial(tmpl).ResolvePartial(sc), true, nil
	}
	t, err := sc.set.Compile(tmpl)
	var out string
	if err == nil {
		out, err = t.Resolve(sc)
	}
	switch {
	case err == nil:
		return out, true, nil
	case mode == modeStrict:
		return "", false, errUnresolved
	}
	return "", false, nil
}
