package mapping

import (
	"encoding/base64"
	"errors"
	"net/url"
	"regexp"
	"strings"
)

// A minimal placeholder resolver for the mappers and mapping conditions.
// actors/placeholder will be the service's resolver; this one knows only
// what the mappers need: a lookup function for "prefix:name" and the
// pipeline functions of Ditto's placeholder docs.

// lookup resolves one placeholder ("header", "device_id"); ok=false when it
// is unknown or has no value.
type lookup func(prefix, name string) (string, bool)

var errUnresolved = errors.New("placeholder could not be resolved")

var templateExpr = regexp.MustCompile(`\{\{(.*?)}}`)

func hasPlaceholder(s string) bool { return templateExpr.MatchString(s) }

// resolveMode says what happens to a template whose expression resolves to
// nothing.
type resolveMode int

const (
	modeStrict   resolveMode = iota // error (PlaceholderFilter.apply)
	modeOptional                    // whole template absent (applyOrElseDelete, resolver.resolve)
	modeKeep                        // the expression is left as written (resolvePartially)
)

// resolveTemplate replaces every {{ ... }} in tmpl. ok=false (modeOptional)
// means the template resolved to nothing.
func resolveTemplate(tmpl string, lk lookup, mode resolveMode) (string, bool, error) {
	var failed bool
	out := templateExpr.ReplaceAllStringFunc(tmpl, func(m string) string {
		if failed {
			return m
		}
		v, ok := evalPipeline(m[2:len(m)-2], lk)
		if !ok {
			if mode == modeKeep {
				return m
			}
			failed = true
			return m
		}
		return v
	})
	if failed {
		if mode == modeStrict {
			return "", false, errUnresolved
		}
		return "", false, nil
	}
	return out, true, nil
}

// splitOutsideQuotes splits s at sep when not inside '…' or "…".
func splitOutsideQuotes(s string, sep byte) []string {
	var parts []string
	var quote byte
	depth, start := 0, 0
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
			depth--
		case c == sep && depth == 0:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// evalPipeline evaluates "ph:name | fn:x(...) | ...".
func evalPipeline(expr string, lk lookup) (string, bool) {
	stages := splitOutsideQuotes(expr, '|')
	var val string
	var present bool
	for i, st := range stages {
		st = strings.TrimSpace(st)
		if strings.HasPrefix(st, "fn:") {
			var stop bool
			val, present, stop = applyFunction(st[3:], val, present, lk)
			if stop {
				return "", false
			}
			continue
		}
		if i > 0 {
			return "", false // a placeholder only starts a pipeline
		}
		prefix, name, ok := strings.Cut(st, ":")
		if !ok {
			return "", false
		}
		val, present = lk(strings.TrimSpace(prefix), strings.TrimSpace(name))
	}
	return val, present
}

// argValue resolves a function argument: a quoted literal or a placeholder.
func argValue(a string, lk lookup) (string, bool) {
	a = strings.TrimSpace(a)
	if len(a) >= 2 && (a[0] == '\'' || a[0] == '"') && a[len(a)-1] == a[0] {
		return a[1 : len(a)-1], true
	}
	prefix, name, ok := strings.Cut(a, ":")
	if !ok {
		return "", false
	}
	return lk(prefix, name)
}

// applyFunction applies one fn: stage; stop=true is fn:delete.
func applyFunction(call string, val string, present bool, lk lookup) (string, bool, bool) {
	name, rest, _ := strings.Cut(call, "(")
	name = strings.TrimSpace(name)
	rest = strings.TrimSuffix(strings.TrimSpace(rest), ")")
	var args []string
	if strings.TrimSpace(rest) != "" {
		args = splitOutsideQuotes(rest, ',')
	}
	switch name {
	case "default":
		if !present && len(args) == 1 {
			v, ok := argValue(args[0], lk)
			return v, ok, false
		}
		return val, present, false
	case "delete":
		return "", false, true
	case "filter":
		return val, present && filterHolds(args, val, present, lk), false
	}
	if !present {
		return val, false, false
	}
	switch name {
	case "lower":
		return strings.ToLower(val), true, false
	case "upper":
		return strings.ToUpper(val), true, false
	case "trim":
		return strings.TrimSpace(val), true, false
	case "substring-before", "substring-after":
		if len(args) != 1 {
			return "", false, false
		}
		sep, _ := argValue(args[0], lk)
		before, after, found := strings.Cut(val, sep)
		if !found {
			return "", false, false
		}
		if name == "substring-before" {
			return before, true, false
		}
		return after, true, false
	case "replace":
		if len(args) != 2 {
			return "", false, false
		}
		from, _ := argValue(args[0], lk)
		to, _ := argValue(args[1], lk)
		return strings.ReplaceAll(val, from, to), true, false
	case "url-encode":
		return url.QueryEscape(val), true, false
	case "url-decode":
		v, err := url.QueryUnescape(val)
		return v, err == nil, false
	case "base64-encode":
		return base64.StdEncoding.EncodeToString([]byte(val)), true, false
	case "base64-decode":
		v, err := base64.StdEncoding.DecodeString(val)
		return string(v), err == nil, false
	}
	return "", false, false
}

// filterHolds evaluates fn:filter's condition: (value, op, compared),
// (op, compared) on the pipeline value, or (op) = 'exists' on it.
func filterHolds(args []string, val string, present bool, lk lookup) bool {
	var subject string
	var subjectPresent bool
	var op, compared string
	switch len(args) {
	case 3:
		subject, subjectPresent = argValue(args[0], lk)
		op, _ = argValue(args[1], lk)
		compared, _ = argValue(args[2], lk)
	case 2:
		if second, _ := argValue(args[1], lk); second == "exists" {
			// (filterValue, 'exists')
			subject, subjectPresent = argValue(args[0], lk)
			op, compared = "exists", "true"
			break
		}
		subject, subjectPresent = val, present
		op, _ = argValue(args[0], lk)
		compared, _ = argValue(args[1], lk)
	case 1:
		subject, subjectPresent = val, present
		op, _ = argValue(args[0], lk)
		compared = "true"
	default:
		return false
	}
	switch op {
	case "eq":
		return subjectPresent && subject == compared
	case "ne":
		return !subjectPresent || subject != compared
	case "exists":
		want := compared != "false"
		return (subjectPresent && subject != "") == want
	case "like":
		return subjectPresent && likeRegexp(compared).MatchString(subject)
	}
	return false
}

// likeRegexp turns a like pattern (*, ?, |) into an anchored regexp.
func likeRegexp(p string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^(?:")
	for _, r := range p {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		case '|':
			b.WriteString("|")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString(")$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return regexp.MustCompile(`^\b$`) // matches nothing
	}
	return re
}
