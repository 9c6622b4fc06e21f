// Package template is the service's one placeholder engine: it compiles
// Ditto templates ("a/{{ prefix:name | fn:function(args) | ... }}/b") and
// resolves them. Validation, the data plane, the payload mappers and the
// connection runner all compile with it, so a template that validates is
// parsed at run time exactly as it was validated; they differ only in the Set
// of placeholders they allow. internal/placeholder binds it to Ditto Protocol
// messages (Values); this package depends on neither the protocol nor the
// connection model, so that the model's validation can use it.
//
// Resolution follows Ditto's ExpressionResolver: each expression is a
// pipeline whose first stage is a placeholder (or a function fed with
// "nothing"); the pipeline value is resolved (one or more strings),
// unresolved or deleted. An expression that ends unresolved makes the whole
// template fail with ErrUnresolved (Ditto drops the message; a failed
// fn:filter ends unresolved unless an fn:default follows); one that ends
// deleted (fn:delete) fails with ErrDeleted (the caller leaves the header out).
//
// Compile once per template (parsing allocates the pipeline); compiled
// templates are immutable and safe for concurrent use.
package template

import (
	"errors"
	"fmt"
	"strings"

	"github.com/dittoconn/dittoconn/proto/ditto"
)

// Resolver supplies placeholder values; ok=false means unresolvable.
// placeholder.Values implements it; so may any map-backed test double.
type Resolver interface {
	Lookup(prefix, name string) (value string, ok bool)
}

// Func adapts a lookup function to Resolver.
type Func func(prefix, name string) (string, bool)

// Lookup implements Resolver.
func (f Func) Lookup(prefix, name string) (string, bool) { return f(prefix, name) }

// Sentinels; the returned errors wrap them and are also *ditto.Error
// (see AsDitto).
var (
	ErrUnresolved      = errors.New("placeholder: unresolved")
	ErrDeleted         = errors.New("placeholder: deleted")
	ErrUnknown         = errors.New("placeholder: unknown placeholder")
	ErrFunctionUnknown = errors.New("placeholder: unknown function")
	ErrSignature       = errors.New("placeholder: invalid function signature")
	ErrTooComplex      = errors.New("placeholder: too many functions")
)

// Ditto error codes of the exceptions these errors stand for.
const (
	CodeUnresolved        = ditto.CodePlaceholderUnresolved
	CodeFunctionUnknown   = ditto.CodePlaceholderFuncUnknown
	CodeSignatureInvalid  = "placeholder:function.signature.invalid"
	CodeFunctionTooComplx = "placeholder:function.too.complex"
)

// MaxFunctions is Ditto's limit of functions in one pipeline.
const MaxFunctions = 10

// MaxResults caps ResolveAll's cartesian product, so that a few fn:split
// stages over hostile headers cannot multiply memory.
const MaxResults = 1000

// Error is a placeholder failure: Err is one of the sentinels, Expr the
// offending expression or placeholder.
type Error struct {
	Err  error
	Expr string
}

func (e *Error) Error() string { return e.Err.Error() + ": " + e.Expr }
func (e *Error) Unwrap() error { return e.Err }

// UnresolvedDescription is the description of Ditto's
// UnresolvedPlaceholderException.
const UnresolvedDescription = "Some placeholders could not be resolved. Check the spelling of the placeholder and make sure all required headers are set."

// Ditto returns the Ditto exception this error stands for.
func (e *Error) Ditto() *ditto.Error {
	switch {
	case errors.Is(e.Err, ErrFunctionUnknown):
		return ditto.New(400, CodeFunctionUnknown, fmt.Sprintf("The function <%s> is not known.", e.Expr), "")
	case errors.Is(e.Err, ErrSignature):
		return ditto.New(400, CodeSignatureInvalid,
			fmt.Sprintf("The function signature of <%s> is invalid.", e.Expr), "")
	case errors.Is(e.Err, ErrTooComplex):
		return ditto.New(400, CodeFunctionTooComplx,
			fmt.Sprintf("The function pipeline contained more than the allowed %d functions.", MaxFunctions), "")
	}
	return ditto.New(400, CodeUnresolved, fmt.Sprintf("The placeholder '%s' could not be resolved.", e.Expr),
		UnresolvedDescription)
}

// AsDitto converts any error of this package to its Ditto exception.
func AsDitto(err error) (*ditto.Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Ditto(), true
	}
	return nil, false
}

// Template is a compiled template. It is immutable and safe for concurrent use.
type Template struct {
	src   string
	parts []part
}

type part struct {
	lit  string
	expr *expr // nil for a literal part
}

type expr struct {
	src   string // between the braces, as written
	first *ref   // nil when the pipeline starts with a function
	fns   []fnCall
}

type ref struct {
	prefix, name string
	src          string
	time         *timeSpec // parsed time:... name
}

type arg struct {
	lit   string
	ref   *ref
	isRef bool
}

type fnCall struct {
	name string
	src  string
	args []arg
	fmt  []fmtPart // fn:format, parsed once
}

// nextExpr finds the first expression at or after from as the pattern
// \{\{(.*?)}} does: the first "{{" whose shortest run to "}}" has no line
// break. start is the index of "{{", end the index after "}}".
func nextExpr(s string, from int) (start, end int, ok bool) {
	for from < len(s) {
		k := strings.Index(s[from:], "{{")
		if k < 0 {
			return 0, 0, false
		}
		start = from + k
		e := strings.Index(s[start+2:], "}}")
		if e < 0 {
			return 0, 0, false
		}
		inner := s[start+2 : start+2+e]
		nl := strings.LastIndexByte(inner, '\n')
		if nl < 0 {
			return start, start + 4 + e, true
		}
		// every "{{" before the last line break reaches the same "}}"
		from = start + 2 + nl + 1
	}
	return 0, 0, false
}

// HasPlaceholders reports whether s contains a {{ ... }} expression, i.e.
// whether Compile(s) would yield a template that is not constant.
func HasPlaceholders(s string) bool {
	_, _, ok := nextExpr(s, 0)
	return ok
}

// Compile parses a template with every placeholder the service resolves
// (All). It fails for unknown placeholders or functions, wrong function
// signatures and pipelines longer than MaxFunctions.
func Compile(template string) (*Template, error) { return All.Compile(template) }

// Compile parses a template allowing only the placeholders of s (also as
// function arguments), as Ditto's validation does with the placeholders of
// the template's place: an expression naming any other fails with ErrUnknown.
func (s Set) Compile(template string) (*Template, error) {
	return s.compile(template, false)
}

// CompilePartial is Compile for Ditto's partial resolution: an expression
// that does not compile stays in the template as written and ResolvePartial
// keeps it, instead of failing the whole template.
func (s Set) CompilePartial(template string) *Template {
	t, _ := s.compile(template, true)
	return t
}

func (s Set) compile(template string, partial bool) (*Template, error) {
	t := &Template{src: template}
	last := 0
	for {
		start, end, ok := nextExpr(template, last)
		if !ok {
			break
		}
		if start > last {
			t.parts = append(t.parts, part{lit: template[last:start]})
		}
		e, err := s.compileExpr(template[start+2 : end-2])
		switch {
		case err == nil:
			t.parts = append(t.parts, part{expr: e})
		case partial:
			t.parts = append(t.parts, part{lit: template[start:end]})
		default:
			return nil, err
		}
		last = end
	}
	if last < len(template) {
		t.parts = append(t.parts, part{lit: template[last:]})
	}
	return t, nil
}

// String returns the source template.
func (t *Template) String() string { return t.src }

// IsConstant reports whether the template has no expression: it resolves to
// its source text whatever the Resolver.
func (t *Template) IsConstant() bool {
	for _, p := range t.parts {
		if p.expr != nil {
			return false
		}
	}
	return true
}

// ReplaceExpressions returns the template with every expression replaced by
// repl, unresolved (validation checks the shape of an address this way).
func (t *Template) ReplaceExpressions(repl string) string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.expr == nil {
			b.WriteString(p.lit)
		} else {
			b.WriteString(repl)
		}
	}
	return b.String()
}

// Resolve resolves the template to one string: the first value when a
// function produced several (fn:split).
func (t *Template) Resolve(r Resolver) (string, error) {
	if len(t.parts) == 1 && t.parts[0].expr == nil {
		return t.parts[0].lit, nil
	}
	if len(t.parts) == 0 {
		return "", nil
	}
	var b strings.Builder
	for _, p := range t.parts {
		if p.expr == nil {
			b.WriteString(p.lit)
			continue
		}
		el := p.expr.eval(r)
		if err := el.err(p.expr); err != nil {
			return "", err
		}
		b.WriteString(el.vals[0])
	}
	return b.String(), nil
}

// ResolvePartial resolves what it can: an expression that ends unresolved
// or deleted stays as written (Ditto's resolvePartially).
func (t *Template) ResolvePartial(r Resolver) string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.expr == nil {
			b.WriteString(p.lit)
			continue
		}
		if el := p.expr.eval(r); el.state == stResolved {
			b.WriteString(el.vals[0])
		} else {
			b.WriteString("{{" + p.expr.src + "}}")
		}
	}
	return b.String()
}

// ResolveAll resolves to every combination of values (the cartesian product
// when functions produce several values, as Ditto's array pipelines do).
func (t *Template) ResolveAll(r Resolver) ([]string, error) {
	out := []string{""}
	for _, p := range t.parts {
		vals := []string{p.lit}
		if p.expr != nil {
			el := p.expr.eval(r)
			if err := el.err(p.expr); err != nil {
				return nil, err
			}
			vals = el.vals
		}
		next := make([]string, 0, min(len(out)*len(vals), MaxResults))
	fill:
		for _, o := range out {
			for _, v := range vals {
				if len(next) == MaxResults {
					break fill
				}
				next = append(next, o+v)
			}
		}
		out = next
	}
	return out, nil
}

// Resolve compiles and resolves template once.
func Resolve(template string, r Resolver) (string, error) {
	t, err := Compile(template)
	if err != nil {
		return "", err
	}
	return t.Resolve(r)
}

func (el element) err(e *expr) error {
	switch el.state {
	case stUnresolved:
		return &Error{Err: ErrUnresolved, Expr: e.unresolvedName()}
	case stDeleted:
		return &Error{Err: ErrDeleted, Expr: strings.TrimSpace(e.src)}
	}
	return nil
}

func (e *expr) unresolvedName() string {
	if e.first != nil {
		return e.first.src
	}
	return strings.TrimSpace(e.src)
}

// splitStages splits a pipeline at each '|' outside single or double quotes,
// as Ditto's stage pattern does (parentheses do not protect a '|'). ok=false
// for an unterminated quote or an empty stage ("a||b", a leading or trailing
// '|'), which Ditto reports as an unresolved placeholder; a stage of blanks
// is not empty.
func splitStages(s string) (stages []string, ok bool) {
	start := 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '|':
			if i == start {
				return nil, false
			}
			stages = append(stages, s[start:i])
			start = i + 1
		}
	}
	if quote != 0 || start == len(s) {
		return nil, false
	}
	return append(stages, s[start:]), true
}

func (s Set) compileExpr(src string) (*expr, error) {
	stages, ok := splitStages(src)
	if !ok {
		return nil, &Error{Err: ErrUnknown, Expr: strings.TrimSpace(src)}
	}
	if len(stages) > MaxFunctions+1 {
		return nil, &Error{Err: ErrTooComplex, Expr: strings.TrimSpace(src)}
	}
	e := &expr{src: src}
	first := strings.TrimSpace(stages[0])
	fnStages := stages[1:]
	if strings.HasPrefix(first, "fn:") {
		fnStages = stages
	} else {
		r, err := s.compileRef(first)
		if err != nil {
			return nil, err
		}
		e.first = r
	}
	for _, st := range fnStages {
		f, err := s.compileFn(strings.TrimSpace(st))
		if err != nil {
			return nil, err
		}
		e.fns = append(e.fns, f)
	}
	return e, nil
}

func (s Set) compileRef(src string) (*ref, error) {
	prefix, name, ok := strings.Cut(src, ":")
	prefix = strings.TrimSpace(prefix)
	if !ok || !s.Supports(prefix, name) {
		return nil, &Error{Err: ErrUnknown, Expr: src}
	}
	r := &ref{prefix: prefix, name: name, src: src}
	if prefix == "time" {
		ts, err := parseTime(name)
		if err != nil {
			return nil, &Error{Err: ErrUnknown, Expr: src}
		}
		r.time = ts
	}
	return r, nil
}
