package rql

import (
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Resolver supplies placeholder values (topic:action, resource:path,
// header:x, time:now, ...) for properties the document does not have and for
// unquoted placeholder literals. ok=false means "cannot be resolved".
type Resolver interface {
	Lookup(prefix, name string) (value string, ok bool)
}

// Predicate is a compiled RQL filter. It is immutable and safe for
// concurrent use; Match does not re-parse and allocates nothing for
// documents made of map[string]any, []any, string, bool, nil, float64 and
// json.Number (what DecodeDocument returns).
//
// Semantics follow Ditto's in-memory thing predicate
// (ThingPredicatePredicateVisitor), which is what connection filters use:
//   - a property is first looked up in the document as a slash-separated
//     path; if absent and it has a "prefix:" it is resolved by the Resolver,
//     the result being a string;
//   - eq/ne/gt/ge/lt/le/in compare scalars only: arrays and objects never
//     match (ne is the negation of eq, so it matches them and missing fields);
//   - numbers compare numerically; a number against a string compares
//     numerically when the string is a decimal number, otherwise both sides
//     compare as strings, as do values of different types (true vs "true");
//   - null only equals the null literal; ordering operators never match null;
//   - like/ilike apply only to string fields: '*' is any run of characters,
//     '?' exactly one, the whole string must match, and neither crosses a
//     line terminator (Java's '.'); ilike folds ASCII case only;
//   - exists is true when the property is present (even as null) or its
//     placeholder resolves; empty is true when it is absent, null, "", [] or {}.
type Predicate struct {
	root cnode
}

// ErrUnsupported is returned by Compile for a node type it does not know.
var ErrUnsupported = errors.New("rql: unsupported node")

// CompileString parses and compiles a filter.
func CompileString(s string) (*Predicate, error) {
	n, err := Parse(s)
	if err != nil {
		return nil, err
	}
	return Compile(n)
}

// Compile turns a parsed filter into a Predicate.
func Compile(n Node) (*Predicate, error) {
	c, err := compile(n, 0)
	if err != nil {
		return nil, err
	}
	return &Predicate{root: c}, nil
}

// Match evaluates the predicate. doc is the JSON document (usually the thing
// a signal implies); r may be nil when no placeholders are available.
func (p *Predicate) Match(doc any, r Resolver) bool {
	if p == nil || p.root == nil {
		return false
	}
	return p.root.eval(doc, r)
}

// DecodeDocument decodes JSON into the generic form Match reads, keeping
// numbers exact (json.Number).
func DecodeDocument(data []byte) (any, error) {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("rql: trailing data after JSON document")
	}
	return v, nil
}

// MatchLike reports whether s matches an RQL like pattern ('*' any run, '?'
// one character, whole-string match, no wildcard crosses a line terminator).
func MatchLike(pattern, s string) bool { return globMatch(pattern, s, false) }

type cnode interface {
	eval(doc any, r Resolver) bool
}

// property is a pre-split property path.
type property struct {
	raw      string
	segs     []string
	isPH     bool // has "prefix:name" form
	phPrefix string
	phName   string
}

func newProperty(raw string) property {
	p := property{raw: raw}
	trimmed := strings.TrimPrefix(raw, "/")
	if trimmed != "" {
		p.segs = strings.Split(trimmed, "/")
	}
	if pre, name, ok := strings.Cut(raw, ":"); ok {
		p.isPH, p.phPrefix, p.phName = true, pre, name
	}
	return p
}

// value kinds of a field or literal after lookup
type kind uint8

const (
	kMissing kind = iota
	kNull
	kString
	kNumber
	kBool
	kComplex // array or object: never compares
)

// scalar is a looked-up value. Numbers keep their text so that large
// integers compare exactly.
type scalar struct {
	k   kind
	s   string // string value, or number text
	b   bool
	num numVal
}

// numVal is a number in one of two exact-enough forms.
type numVal struct {
	isInt bool
	i     int64
	f     float64
	text  string // original decimal text, for the exact fallback
}

func (p *property) lookup(doc any, r Resolver) scalar {
	v, ok := walk(doc, p.segs)
	if ok {
		return toScalar(v)
	}
	if p.isPH && r != nil {
		if s, ok := r.Lookup(p.phPrefix, p.phName); ok {
			return scalar{k: kString, s: s}
		}
	}
	return scalar{k: kMissing}
}

// present reports whether the property exists; raw gives the document value.
func (p *property) present(doc any, r Resolver) (raw any, inDoc bool, phVal string, phOK bool) {
	if v, ok := walk(doc, p.segs); ok {
		return v, true, "", false
	}
	if p.isPH && r != nil {
		s, ok := r.Lookup(p.phPrefix, p.phName)
		return nil, false, s, ok
	}
	return nil, false, "", false
}

func walk(doc any, segs []string) (any, bool) {
	cur := doc
	for _, s := range segs {
		switch m := cur.(type) {
		case map[string]any:
			v, ok := m[s]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			// Ditto's JsonObject.getValue does not index into arrays.
			return nil, false
		default:
			return nil, false
		}
	}
	if len(segs) == 0 {
		// the root object itself is never a comparable field
		return nil, false
	}
	return cur, true
}

func toScalar(v any) scalar {
	switch x := v.(type) {
	case nil:
		return scalar{k: kNull}
	case string:
		return scalar{k: kString, s: x}
	case bool:
		return scalar{k: kBool, b: x}
	case json.Number:
		if n, ok := parseNumber(string(x)); ok {
			return scalar{k: kNumber, num: n}
		}
		return scalar{k: kString, s: string(x)}
	case float64:
		return scalar{k: kNumber, num: floatNum(x)}
	case int:
		return scalar{k: kNumber, num: numVal{isInt: true, i: int64(x), text: strconv.Itoa(x)}}
	case int64:
		return scalar{k: kNumber, num: numVal{isInt: true, i: x, text: strconv.FormatInt(x, 10)}}
	default:
		return scalar{k: kComplex}
	}
}

func floatNum(f float64) numVal {
	if f == math.Trunc(f) && math.Abs(f) < 1<<62 {
		return numVal{isInt: true, i: int64(f), f: f, text: strconv.FormatInt(int64(f), 10)}
	}
	return numVal{f: f, text: strconv.FormatFloat(f, 'g', -1, 64)}
}

// parseNumber accepts what Java's BigDecimal(String) accepts: optional sign,
// digits with an optional fraction (at least one digit overall), optional
// exponent. Go's ParseFloat alone would also take "Inf", "0x1p3" or "1_0".
func parseNumber(s string) (numVal, bool) {
	if !isDecimal(s) {
		return numVal{}, false
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return numVal{isInt: true, i: i, f: float64(i), text: s}, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return numVal{}, false
	}
	n := numVal{f: f, text: s}
	if f == math.Trunc(f) && math.Abs(f) < 1<<62 {
		n.isInt, n.i = true, int64(f)
		// keep exactness only when the text is a plain integer-valued decimal
		n.isInt = !strings.ContainsAny(s, "eE") && isIntegral(s)
	}
	return n, true
}

func isIntegral(s string) bool {
	_, frac, ok := strings.Cut(s, ".")
	return !ok || strings.Trim(frac, "0") == ""
}

func isDecimal(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		ed := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			ed++
		}
		if ed == 0 {
			return false
		}
	}
	return i == len(s)
}

// cmpNum compares two numbers; ok=false never happens for parsed numbers.
func cmpNum(a, b numVal) int {
	if a.isInt && b.isInt {
		switch {
		case a.i < b.i:
			return -1
		case a.i > b.i:
			return 1
		}
		return 0
	}
	// both finite floats from decimal text; when floats tie but texts
	// differ, decide exactly with big.Float (rare: >15 significant digits)
	af, bf := a.f, b.f
	if a.isInt {
		af = float64(a.i)
	}
	if b.isInt {
		bf = float64(b.i)
	}
	switch {
	case af < bf:
		return -1
	case af > bf:
		return 1
	}
	if a.text != "" && b.text != "" && a.text != b.text {
		x, ok1 := new(big.Float).SetPrec(512).SetString(a.text)
		y, ok2 := new(big.Float).SetPrec(512).SetString(b.text)
		if ok1 && ok2 {
			return x.Cmp(y)
		}
	}
	return 0
}

// literal is a compiled comparison value.
type literal struct {
	k    kind // kNull, kString, kNumber, kBool, or kMissing for a placeholder
	s    string
	b    bool
	num  numVal
	sNum numVal // string literal parsed as a number
	sIsN bool
	// text is the literal's Java toString, for the string fallback
	text string
	// placeholder literal (time:now ...), resolved at evaluation
	ph       bool
	phPrefix string
	phName   string
}

func newLiteral(v any) (literal, error) {
	switch x := v.(type) {
	case nil:
		return literal{k: kNull}, nil
	case string:
		l := literal{k: kString, s: x, text: x}
		l.sNum, l.sIsN = parseNumber(x)
		return l, nil
	case bool:
		return literal{k: kBool, b: x, text: strconv.FormatBool(x)}, nil
	case int64:
		return literal{k: kNumber, num: numVal{isInt: true, i: x, f: float64(x), text: strconv.FormatInt(x, 10)},
			text: strconv.FormatInt(x, 10)}, nil
	case float64:
		n := numVal{f: x, text: strconv.FormatFloat(x, 'f', -1, 64)}
		return literal{k: kNumber, num: n, text: javaDouble(x)}, nil
	case Placeholder:
		pre, name, _ := strings.Cut(x.Name, ":")
		return literal{ph: true, phPrefix: pre, phName: name}, nil
	default:
		return literal{}, ErrUnsupported
	}
}

// javaDouble approximates BigDecimal(Double.toString(d)).toString() for the
// rare case a double literal is compared as text.
func javaDouble(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e7 {
		return strconv.FormatFloat(f, 'f', 1, 64)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// resolve turns a placeholder literal into a string literal.
func (l *literal) resolve(r Resolver) (literal, bool) {
	if !l.ph {
		return *l, true
	}
	if r == nil {
		return literal{k: kNull}, true
	}
	s, ok := r.Lookup(l.phPrefix, l.phName)
	if !ok {
		// Ditto resolves an unresolvable placeholder literal to null
		return literal{k: kNull}, true
	}
	out := literal{k: kString, s: s, text: s}
	out.sNum, out.sIsN = parseNumber(s)
	return out, true
}

// compare returns field <=> literal as Ditto's compare(value, obj) does;
// ok=false when the pair is not comparable (null, arrays, objects, missing).
func compare(f scalar, l *literal) (int, bool) {
	switch f.k {
	case kMissing, kNull, kComplex:
		return 0, false
	}
	if l.k == kNull || l.k == kMissing {
		return 0, false
	}
	switch {
	case f.k == kNumber && l.k == kNumber:
		return cmpNum(f.num, l.num), true
	case f.k == kNumber && l.k == kString && l.sIsN:
		return cmpNum(f.num, l.sNum), true
	case f.k == kString && l.k == kNumber:
		if n, ok := parseNumber(f.s); ok {
			return cmpNum(n, l.num), true
		}
	case f.k == kString && l.k == kString:
		return strings.Compare(f.s, l.s), true
	case f.k == kBool && l.k == kBool:
		return boolCmp(f.b, l.b), true
	}
	// different types: compare the string representations
	return strings.Compare(fieldText(f), l.text), true
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

func fieldText(f scalar) string {
	switch f.k {
	case kString:
		return f.s
	case kBool:
		return strconv.FormatBool(f.b)
	case kNumber:
		return f.num.text
	}
	return ""
}

type cmpNode struct {
	op   string
	prop property
	lit  literal
}

func (c *cmpNode) eval(doc any, r Resolver) bool {
	f := c.prop.lookup(doc, r)
	l, _ := c.lit.resolve(r)
	switch c.op {
	case "eq", "ne":
		eq := false
		if f.k == kNull && l.k == kNull {
			eq = true
		} else if n, ok := compare(f, &l); ok {
			eq = n == 0
		}
		return eq == (c.op == "eq")
	case "gt", "ge", "lt", "le":
		n, ok := compare(f, &l)
		if !ok {
			return false
		}
		switch c.op {
		case "gt":
			return n > 0
		case "ge":
			return n >= 0
		case "lt":
			return n < 0
		}
		return n <= 0
	case "like", "ilike":
		if f.k != kString || l.k == kNull {
			return false
		}
		pat := l.text
		if l.k == kString {
			pat = l.s
		}
		return globMatch(pat, f.s, c.op == "ilike")
	}
	return false
}

type inNode struct {
	prop property
	lits []literal
}

func (c *inNode) eval(doc any, r Resolver) bool {
	f := c.prop.lookup(doc, r)
	for i := range c.lits {
		l, _ := c.lits[i].resolve(r)
		if n, ok := compare(f, &l); ok && n == 0 {
			return true
		}
	}
	return false
}

type existsNode struct{ prop property }

func (c *existsNode) eval(doc any, r Resolver) bool {
	_, inDoc, _, phOK := c.prop.present(doc, r)
	return inDoc || phOK
}

type emptyNode struct{ prop property }

func (c *emptyNode) eval(doc any, r Resolver) bool {
	v, inDoc, s, phOK := c.prop.present(doc, r)
	if !inDoc {
		return !phOK || s == ""
	}
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

type logicalNode struct {
	op   string
	kids []cnode
}

func (c *logicalNode) eval(doc any, r Resolver) bool {
	switch c.op {
	case "and":
		for _, k := range c.kids {
			if !k.eval(doc, r) {
				return false
			}
		}
		return true
	case "or":
		for _, k := range c.kids {
			if k.eval(doc, r) {
				return true
			}
		}
		return false
	case "not":
		return len(c.kids) == 1 && !c.kids[0].eval(doc, r)
	}
	return false
}

func compile(n Node, depth int) (cnode, error) {
	if depth > 256 {
		return nil, ErrUnsupported
	}
	switch x := n.(type) {
	case *Comparison:
		switch x.Op {
		case "eq", "ne", "gt", "ge", "lt", "le", "like", "ilike":
		default:
			return nil, ErrUnsupported
		}
		l, err := newLiteral(x.Value)
		if err != nil {
			return nil, err
		}
		return &cmpNode{op: x.Op, prop: newProperty(x.Property), lit: l}, nil
	case *Multi:
		if x.Op != "in" {
			return nil, ErrUnsupported
		}
		c := &inNode{prop: newProperty(x.Property)}
		for _, v := range x.Values {
			l, err := newLiteral(v)
			if err != nil {
				return nil, err
			}
			c.lits = append(c.lits, l)
		}
		return c, nil
	case *Exists:
		return &existsNode{prop: newProperty(x.Property)}, nil
	case *Empty:
		return &emptyNode{prop: newProperty(x.Property)}, nil
	case *Logical:
		switch x.Op {
		case "and", "or", "not":
		default:
			return nil, ErrUnsupported
		}
		c := &logicalNode{op: x.Op}
		for _, k := range x.Children {
			ck, err := compile(k, depth+1)
			if err != nil {
				return nil, err
			}
			c.kids = append(c.kids, ck)
		}
		return c, nil
	}
	return nil, ErrUnsupported
}

// isLineTerminator mirrors what Java's '.' refuses without DOTALL.
func isLineTerminator(r rune) bool {
	return r == '\n' || r == '\r' || r == '\u0085' || r == '\u2028' || r == '\u2029'
}

func foldASCII(r rune) rune {
	if r >= 'A' && r <= 'Z' {
		return r + 'a' - 'A'
	}
	return r
}

// globMatch matches the whole of s against pattern with '*' and '?', in
// linear space and without allocating (classic backtracking on the last '*').
func globMatch(pattern, s string, fold bool) bool {
	p, i := 0, 0
	starP, starI := -1, -1
	for i < len(s) {
		sr, sw := utf8.DecodeRuneInString(s[i:])
		if p < len(pattern) {
			pr, pw := utf8.DecodeRuneInString(pattern[p:])
			switch {
			case pr == '*':
				starP, starI = p+pw, i
				p += pw
				continue
			case pr == '?' && !isLineTerminator(sr):
				p += pw
				i += sw
				continue
			case pr != '?' && (pr == sr || fold && foldASCII(pr) == foldASCII(sr)):
				p += pw
				i += sw
				continue
			}
		}
		if starP < 0 {
			return false
		}
		// let the last '*' absorb one more character, unless it is a line terminator
		r, w := utf8.DecodeRuneInString(s[starI:])
		if isLineTerminator(r) {
			return false
		}
		starI += w
		i = starI
		p = starP
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
