package model

import (
	"regexp"
	"strings"

	"github.com/dittoconn/dittoconn/proto/ditto"
)

// selectableThingFields are the fields a thing field selector may name, as
// Ditto's ThingFieldSelector lists them (each entry a regular expression).
var selectableThingFields = []string{"thingId", "policyId", "definition",
	"_namespace", "_revision", "_created", "_modified", "_metadata(/[^,]+)?", "_policy", "_context",
	"_context(/[^,]+)?", "features(/[^,]+)?", "attributes(/[^,]+)?"}

var (
	knownThingField     = "/?(" + strings.Join(selectableThingFields, "|") + ")"
	thingFieldSelection = regexp.MustCompile("^" + knownThingField + "(," + knownThingField + ")*$")
	// thingFieldsList is the list as Java's List.toString prints it.
	thingFieldsList = "[" + strings.Join(selectableThingFields, ", ") + "]"
)

// thingFieldSelectorErr checks a target topic's extraFields as
// ThingFieldSelector.fromString does while Ditto parses the topic: the
// selector must parse (balanced parentheses, no "//" in a pointer) and,
// unless it holds a placeholder, the text as written must name thing fields
// only, so "attributes(a,b)" is refused although it parses.
func thingFieldSelectorErr(sel string) *ditto.Error {
	if sel == "" {
		return nil
	}
	if e := FieldSelectorErr(sel); e != nil {
		return e
	}
	if containsAnyPlaceholder(sel) || thingFieldSelection.MatchString(sel) {
		return nil
	}
	return ditto.ThingFieldSelectionInvalid(sel, thingFieldsList)
}

// checkSelectorPointers walks the selector as JsonFactory.newFieldSelector
// flattens it and fails where it would build a pointer with "//".
func checkSelectorPointers(s string) *ditto.Error {
	for _, key := range splitAroundComma(s) {
		open, closing := strings.Index(key, "("), strings.Index(key, ")")
		if open >= 0 && open < closing && !containsPlaceholder(key) {
			if strings.Contains(key[:open], "//") {
				return ditto.PointerConsecutiveSlashes(key[:open])
			}
			// Ditto drops the last character, whatever it is.
			inner := []rune(key[open+1:])
			if e := checkSelectorPointers(string(inner[:len(inner)-1])); e != nil {
				return e
			}
			continue
		}
		if strings.Contains(key, "//") {
			return ditto.PointerConsecutiveSlashes(key)
		}
	}
	return nil
}

// splitAroundComma splits at the commas outside parentheses; a ')' without
// its '(' is an ordinary character, as in Ditto's field selector factory.
func splitAroundComma(s string) []string {
	var parts []string
	var b strings.Builder
	depth := 0
	for _, c := range s {
		switch {
		case c == '(':
			depth++
			b.WriteRune(c)
		case depth > 0:
			if c == ')' {
				depth--
			}
			b.WriteRune(c)
		case c == ',':
			parts = append(parts, b.String())
			b.Reset()
		default:
			b.WriteRune(c)
		}
	}
	return append(parts, b.String())
}

// containsPlaceholder is Ditto's "{{ … }}" test (the possessive pattern of
// Placeholders): a "{{" with a "}}" somewhere after it.
func containsPlaceholder(s string) bool {
	i := strings.Index(s, "{{")
	return i >= 0 && strings.Contains(s[i+2:], "}}")
}

// containsAnyPlaceholder adds Ditto's legacy "${…}" form.
func containsAnyPlaceholder(s string) bool {
	if containsPlaceholder(s) {
		return true
	}
	i := strings.Index(s, "${")
	return i >= 0 && strings.Contains(s[i+2:], "}")
}

// FieldSelectorErr is the error JsonFactory.newFieldSelector (without URL
// decoding) throws for sel, or nil: unbalanced parentheses are
// json.fieldselector.invalid, "//" in a pointer json.pointer.invalid. An
// empty selector selects nothing and is valid.
func FieldSelectorErr(sel string) *ditto.Error {
	if sel == "" {
		return nil
	}
	if strings.Contains(sel, "(") && strings.Count(sel, "(") != strings.Count(sel, ")") {
		return ditto.FieldSelectorInvalid(sel)
	}
	return checkSelectorPointers(sel)
}
