package template

import (
	"encoding/base64"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/dittoconn/dittoconn/internal/model/rql"
)

type state uint8

const (
	stResolved state = iota
	stUnresolved
	stDeleted
)

// element is a pipeline value (Ditto's PipelineElement).
type element struct {
	state state
	vals  []string // non-empty when resolved
}

var (
	unresolved = element{state: stUnresolved}
	deleted    = element{state: stDeleted}
)

func resolved(vals ...string) element {
	if len(vals) == 0 {
		return unresolved
	}
	return element{vals: vals}
}

// mapVals applies f to each value; values for which f reports false are dropped.
func (el element) mapVals(f func(string) (string, bool)) element {
	if el.state != stResolved {
		return el
	}
	out := make([]string, 0, len(el.vals))
	for _, v := range el.vals {
		if s, ok := f(v); ok {
			out = append(out, s)
		}
	}
	return resolved(out...)
}

func (e *expr) eval(r Resolver) element {
	el := unresolved
	if e.first != nil {
		el = e.first.eval(r)
	}
	for i := range e.fns {
		if el.state == stDeleted {
			// a deleted value stays deleted; following functions are ignored
			return el
		}
		el = e.fns[i].apply(el, r)
	}
	return el
}

func (rf *ref) eval(r Resolver) element {
	if rf.time != nil {
		return resolved(rf.time.resolve(r))
	}
	if r == nil {
		return unresolved
	}
	name := rf.name
	if rf.prefix == "topic" && name == "entity-name" {
		name = "entityName"
	}
	v, ok := r.Lookup(rf.prefix, name)
	if !ok {
		return unresolved
	}
	return resolved(v)
}

// arity of each function: minimum and maximum number of arguments.
var functions = map[string][2]int{
	"default":          {1, 1},
	"upper":            {0, 0},
	"lower":            {0, 0},
	"trim":             {0, 0},
	"substring-before": {1, 1},
	"substring-after":  {1, 1},
	"delete":           {0, 0},
	"replace":          {2, 2},
	"split":            {1, 1},
	"join":             {1, 1},
	"url-encode":       {0, 0},
	"url-decode":       {0, 0},
	"base64-encode":    {0, 0},
	"base64-decode":    {0, 0},
	"filter":           {1, 3},
	"format":           {1, 1},
}

// Functions lists the pipeline functions this package implements.
func Functions() []string {
	out := make([]string, 0, len(functions))
	for k := range functions {
		out = append(out, k)
	}
	return out
}

func (s Set) compileFn(st string) (fnCall, error) {
	body, ok := strings.CutPrefix(st, "fn:")
	if !ok {
		return fnCall{}, &Error{Err: ErrFunctionUnknown, Expr: st}
	}
	name, params := body, ""
	if i := strings.IndexByte(body, '('); i >= 0 {
		name, params = body[:i], body[i:]
	}
	ar, ok := functions[name]
	if !ok {
		return fnCall{}, &Error{Err: ErrFunctionUnknown, Expr: st}
	}
	args, err := s.parseArgs(st, params)
	if err != nil {
		return fnCall{}, err
	}
	if len(args) < ar[0] || len(args) > ar[1] {
		return fnCall{}, &Error{Err: ErrSignature, Expr: st}
	}
	f := fnCall{name: name, src: st, args: args}
	if name == "format" {
		if args[0].isRef {
			return fnCall{}, &Error{Err: ErrSignature, Expr: st}
		}
		parts, ok := parseFormat(args[0].lit)
		if !ok {
			return fnCall{}, &Error{Err: ErrSignature, Expr: st}
		}
		f.fmt = parts
	}
	return f, nil
}

// parseArgs reads "(a, 'b', "c", prefix:name)" of the stage st: quoted
// constants (no escapes) or placeholders of s. A malformed list fails with
// ErrSignature; a placeholder s does not support with ErrUnknown, as Ditto
// resolves a placeholder argument with the same resolver as the pipeline.
func (s Set) parseArgs(st, params string) ([]arg, error) {
	bad := &Error{Err: ErrSignature, Expr: st}
	params = strings.TrimSpace(params)
	if len(params) < 2 || params[0] != '(' || params[len(params)-1] != ')' {
		return nil, bad
	}
	in := params[1 : len(params)-1]
	if strings.TrimSpace(in) == "" {
		return nil, nil
	}
	var args []arg
	i := 0
	for {
		for i < len(in) && isSpace(in[i]) {
			i++
		}
		if i >= len(in) {
			return nil, bad
		}
		switch q := in[i]; q {
		case '\'', '"':
			end := strings.IndexByte(in[i+1:], q)
			if end < 0 {
				return nil, bad
			}
			args = append(args, arg{lit: in[i+1 : i+1+end]})
			i += end + 2
		default:
			end := strings.IndexByte(in[i:], ',')
			if end < 0 {
				end = len(in) - i
			}
			tok := strings.TrimSpace(in[i : i+end])
			prefix, _, isRef := strings.Cut(tok, ":")
			if !isRef || prefix == "" || strings.ContainsFunc(prefix, unicode.IsSpace) {
				return nil, bad
			}
			r, err := s.compileRef(tok)
			if err != nil {
				return nil, err
			}
			args = append(args, arg{ref: r, isRef: true})
			i += end
		}
		for i < len(in) && isSpace(in[i]) {
			i++
		}
		if i == len(in) {
			return args, nil
		}
		if in[i] != ',' {
			return nil, bad
		}
		i++
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }

// value of an argument: a constant, or the first value of its placeholder.
func (a arg) value(r Resolver) (string, bool) {
	if !a.isRef {
		return a.lit, true
	}
	el := a.ref.eval(r)
	if el.state != stResolved {
		return "", false
	}
	return el.vals[0], true
}

func (f *fnCall) apply(el element, r Resolver) element {
	switch f.name {
	case "default":
		if el.state == stUnresolved {
			if v, ok := f.args[0].value(r); ok {
				return resolved(v)
			}
		}
		return el
	case "upper":
		return el.mapVals(func(s string) (string, bool) { return strings.ToUpper(s), true })
	case "lower":
		return el.mapVals(func(s string) (string, bool) { return strings.ToLower(s), true })
	case "trim":
		// Java's String.trim: strip characters <= U+0020
		return el.mapVals(func(s string) (string, bool) {
			return strings.TrimFunc(s, func(c rune) bool { return c <= ' ' }), true
		})
	case "substring-before", "substring-after":
		sep, ok := f.args[0].value(r)
		if !ok {
			return unresolved
		}
		return el.mapVals(func(s string) (string, bool) {
			before, after, found := strings.Cut(s, sep)
			if !found {
				return "", false
			}
			if f.name == "substring-before" {
				return before, true
			}
			return after, true
		})
	case "delete":
		return deleted
	case "replace":
		from, ok1 := f.args[0].value(r)
		to, ok2 := f.args[1].value(r)
		if !ok1 || !ok2 {
			return unresolved
		}
		return el.mapVals(func(s string) (string, bool) { return javaReplace(s, from, to), true })
	case "split":
		sep, ok := f.args[0].value(r)
		if !ok || el.state != stResolved {
			if !ok {
				return unresolved
			}
			return el
		}
		var out []string
		for _, v := range el.vals {
			out = append(out, javaSplit(v, sep)...)
		}
		return resolved(out...)
	case "join":
		sep, ok := f.args[0].value(r)
		if !ok {
			return unresolved
		}
		if el.state != stResolved {
			return el
		}
		return resolved(strings.Join(el.vals, sep))
	case "url-encode":
		return el.mapVals(func(s string) (string, bool) { return javaURLEncode(s), true })
	case "url-decode":
		return el.mapVals(func(s string) (string, bool) {
			// URLDecoder.decode: '+' is a space; a bad escape makes the value unresolvable
			v, err := url.QueryUnescape(s)
			return v, err == nil
		})
	case "base64-encode":
		return el.mapVals(func(s string) (string, bool) { return base64.StdEncoding.EncodeToString([]byte(s)), true })
	case "base64-decode":
		return el.mapVals(func(s string) (string, bool) {
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				b, err = base64.RawStdEncoding.DecodeString(s)
			}
			if err != nil {
				return "", false
			}
			return string(b), true
		})
	case "filter":
		return f.filter(el, r)
	case "format":
		return applyFormat(f.fmt, el)
	}
	return unresolved
}

var filterOps = map[string]bool{"eq": true, "ne": true, "like": true, "exists": true}

// filter is fn:filter. Three arguments: (value, op, compared). Two: (value,
// op) when the second is an operator, else (op, compared) applied to the
// pipeline value, as the documentation describes. One: (op) on the pipeline
// value. It keeps the pipeline value when the condition holds and makes it
// unresolved otherwise.
func (f *fnCall) filter(el element, r Resolver) element {
	if el.state != stResolved {
		return el
	}
	// an unresolved argument counts as the empty string, as in Ditto
	args := make([]string, len(f.args))
	for i, a := range f.args {
		args[i], _ = a.value(r)
	}
	var op string
	var subjects []string
	var compared *string
	switch len(args) {
	case 3:
		subjects, op, compared = []string{args[0]}, args[1], &args[2]
	case 2:
		if filterOps[args[1]] && !f.args[1].isRef {
			subjects, op = []string{args[0]}, args[1]
		} else {
			subjects, op, compared = el.vals, args[0], &args[1]
		}
	case 1:
		subjects, op = el.vals, args[0]
	}
	keep := false
	for _, s := range subjects {
		if filterHolds(op, s, compared) {
			keep = true
			break
		}
	}
	if keep {
		return el
	}
	return unresolved
}

func filterHolds(op, value string, compared *string) bool {
	switch op {
	case "eq", "ne":
		if compared == nil {
			return false
		}
		return (value == *compared) == (op == "eq")
	case "like":
		if compared == nil {
			return false
		}
		// '|' separates alternatives, each a '*'/'?' pattern
		for _, alt := range strings.Split(*compared, "|") {
			if rql.MatchLike(alt, value) {
				return true
			}
		}
		return false
	case "exists":
		want := true
		if compared != nil {
			switch strings.ToLower(*compared) {
			case "true":
			case "false":
				want = false
			default:
				return false
			}
		}
		return (value != "") == want
	}
	return false
}

// javaReplace is String.replace(CharSequence, CharSequence): an empty target
// inserts the replacement between every character.
func javaReplace(s, from, to string) string {
	if from != "" {
		return strings.ReplaceAll(s, from, to)
	}
	var b strings.Builder
	b.WriteString(to)
	for _, c := range s {
		b.WriteRune(c)
		b.WriteString(to)
	}
	return b.String()
}

// javaSplit splits at a literal separator and drops trailing empty strings,
// as String.split does.
func javaSplit(s, sep string) []string {
	var parts []string
	if sep == "" {
		for _, c := range s {
			parts = append(parts, string(c))
		}
	} else {
		parts = strings.Split(s, sep)
	}
	for len(parts) > 0 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	return parts
}

// javaURLEncode is URLEncoder.encode(s, UTF-8): letters, digits and ".-*_"
// stay, space becomes '+', everything else %XX (upper-case) of its UTF-8 bytes.
func javaURLEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-', c == '*', c == '_':
			b.WriteByte(c)
		case c == ' ':
			b.WriteByte('+')
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				// Java encodes an unencodable character as '?'
				b.WriteString("%3F")
				continue
			}
			for j := i; j < i+size; j++ {
				b.WriteByte('%')
				b.WriteByte(hex[s[j]>>4])
				b.WriteByte(hex[s[j]&0xf])
			}
			i += size - 1
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
		}
	}
	return b.String()
}
