// Package placeholder resolves Ditto placeholders in connection templates
// (target addresses, header mappings, enforcement, conditions):
// "{{ prefix:name | fn:function(args) | ... }}". A template is compiled once
// and resolved per message against a Resolver, usually *Values.
//
// Resolution follows Ditto's ExpressionResolver: each expression is a
// pipeline whose first stage is a placeholder (or a function fed with
// "nothing"); the pipeline value is resolved (one or more strings),
// unresolved or deleted. An expression that ends unresolved makes the whole
// template fail with ErrUnresolved (Ditto drops the message; a failed
// fn:filter ends unresolved unless an fn:default follows); one that ends
// deleted (fn:delete) fails with ErrDeleted (the caller leaves the header out).
package placeholder

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/dittoconn/dittoconn/proto/ditto"
)

// Resolver supplies placeholder values; ok=false means unresolvable.
// *Values implements it; so may any map-backed test double.
type Resolver interface {
	Lookup(prefix, name string) (value string, ok bool)
}

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

const unresolvedDescription = "Some placeholders could not be resolved. Check the spelling of the placeholder and make sure all required headers are set."

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
		unresolvedDescription)
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
	src   string
	first *ref // nil when the pipeline starts with a function
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

// placeholderExpr matches as the model's validator does: "{{", the shortest
// text, "}}".
var placeholderExpr = regexp.MustCompile(`\{\{(.*?)}}`)

// HasPlaceholders reports whether s contains a {{ ... }} expression.
func HasPlaceholders(s string) bool { return placeholderExpr.MatchString(s) }

// Compile parses a template. It fails for unknown placeholders or functions,
// wrong function signatures and pipelines longer than MaxFunctions.
func Compile(template string) (*Template, error) {
	t := &Template{src: template}
	last := 0
	for _, m := range placeholderExpr.FindAllStringSubmatchIndex(template, -1) {
		if m[0] > last {
			t.parts = append(t.parts, part{lit: template[last:m[0]]})
		}
		e, err := compileExpr(template[m[2]:m[3]])
		if err != nil {
			return nil, err
		}
		t.parts = append(t.parts, part{expr: e})
		last = m[1]
	}
	if last < len(template) {
		t.parts = append(t.parts, part{lit: template[last:]})
	}
	return t, nil
}

// String returns the source template.
func (t *Template) String() string { return t.src }

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
		switch el.state {
		case stUnresolved:
			return "", &Error{Err: ErrUnresolved, Expr: p.expr.unresolvedName()}
		case stDeleted:
			return "", &Error{Err: ErrDeleted, Expr: strings.TrimSpace(p.expr.src)}
		}
		b.WriteString(el.vals[0])
	}
	return b.String(), nil
}

// ResolveAll resolves to every combination of values (the cartesian product
// when functions produce several values, as Ditto's array pipelines do).
func (t *Template) ResolveAll(r Resolver) ([]string, error) {
	out := []string{""}
	for _, p := range t.parts {
		vals := []string{p.lit}
		if p.expr != nil {
			el := p.expr.eval(r)
			switch el.state {
			case stUnresolved:
				return nil, &Error{Err: ErrUnresolved, Expr: p.expr.unresolvedName()}
			case stDeleted:
				return nil, &Error{Err: ErrDeleted, Expr: strings.TrimSpace(p.expr.src)}
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

func (e *expr) unresolvedName() string {
	if e.first != nil {
		return e.first.src
	}
	return strings.TrimSpace(e.src)
}

// splitStages splits a pipeline at '|' outside quotes and parentheses.
func splitStages(s string) []string {
	var out []string
	depth, start := 0, 0
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
		case c == '(':
			depth++
		case c == ')':
			if depth > 0 {
				depth--
			}
		case c == '|' && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func compileExpr(src string) (*expr, error) {
	stages := splitStages(src)
	if len(stages) > MaxFunctions+1 {
		return nil, &Error{Err: ErrTooComplex, Expr: strings.TrimSpace(src)}
	}
	e := &expr{src: src}
	first := strings.TrimSpace(stages[0])
	fnStages := stages[1:]
	if strings.HasPrefix(first, "fn:") {
		fnStages = stages
	} else {
		r, err := compileRef(first)
		if err != nil {
			return nil, err
		}
		e.first = r
	}
	for _, st := range fnStages {
		f, err := compileFn(strings.TrimSpace(st))
		if err != nil {
			return nil, err
		}
		e.fns = append(e.fns, f)
	}
	return e, nil
}

func compileRef(s string) (*ref, error) {
	prefix, name, ok := strings.Cut(s, ":")
	prefix = strings.TrimSpace(prefix)
	if !ok || !Known(prefix, name) {
		return nil, &Error{Err: ErrUnknown, Expr: s}
	}
	r := &ref{prefix: prefix, name: name, src: s}
	if prefix == "time" {
		ts, err := parseTime(name)
		if err != nil {
			return nil, &Error{Err: ErrUnknown, Expr: s}
		}
		r.time = ts
	}
	return r, nil
}

// names of each prefix; nil = any non-empty name.
var known = map[string][]string{
	"header":     nil,
	"thing":      {"id", "namespace", "name"},
	"policy":     {"id", "namespace", "name"},
	"entity":     {"id", "namespace", "name"},
	"feature":    {"id"},
	"thing-json": nil,
	"topic": {"full", "namespace", "entityName", "entity-name", "group", "channel", "criterion", "action",
		"subject", "action-subject"},
	"resource":   {"type", "path"},
	"time":       nil, // checked by parseTime
	"request":    {"subjectId"},
	"connection": {"id"},
	"source":     {"address"},
}

// Known reports whether prefix:name is a placeholder this package resolves.
// It accepts every placeholder actors/model's validation accepts, plus
// topic:entity-name as an alias of Ditto's topic:entityName.
func Known(prefix, name string) bool {
	names, ok := known[prefix]
	if !ok || name == "" {
		return false
	}
	if prefix == "time" {
		_, err := parseTime(name)
		return err == nil
	}
	if names == nil {
		return true
	}
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}
