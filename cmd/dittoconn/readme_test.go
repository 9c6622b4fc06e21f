package main

import (
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// TestSettingsAreWhatServeReads: the settings table names exactly the
// variables `dittoconn serve` reads, including those another package reads
// for it (the connection logs), so the table cannot miss a new one.
func TestSettingsAreWhatServeReads(t *testing.T) {
	read := map[string]bool{}
	if _, err := parseConfig(nil, func(k string) string { read[k] = true; return "" }); err != nil {
		t.Fatalf("parseConfig with an empty environment: %v", err)
	}
	table := map[string]bool{}
	for _, s := range settings {
		if table[s.env] {
			t.Errorf("%s is twice in the settings table", s.env)
		}
		table[s.env] = true
		if s.flag != "" && s.value == nil {
			t.Errorf("%s has a flag but no field", s.env)
		}
	}
	for k := range read {
		if !table[k] {
			t.Errorf("serve reads %s, which the settings table (and so the README) does not name", k)
		}
	}
	for k := range table {
		if !read[k] {
			t.Errorf("the settings table names %s, which serve does not read", k)
		}
	}
}

// TestREADMEConfiguration: the README's configuration tables document every
// flag and variable of the settings table with its default, and nothing else.
func TestREADMEConfiguration(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	byEnv, byFlag := map[string]setting{}, map[string]setting{}
	for _, s := range settings {
		byEnv[s.env] = s
		if s.flag != "" {
			byFlag[s.flag] = s
		}
	}
	defaults := defaultConfig()
	defaults.Instance = "" // the host name: documented in words

	documentedEnv, documentedFlag := map[string]bool{}, map[string]bool{}
	rows := readmeRows(string(raw))
	if len(rows) < 20 {
		t.Fatalf("found %d configuration rows in the README; is the table header still | flag | variable | default | meaning |?", len(rows))
	}
	for _, r := range rows {
		envs := expand(backticked(r.variables), "_", func(n string) bool { _, ok := byEnv[n]; return ok })
		flags := expand(backticked(r.flags), "-", func(n string) bool { _, ok := byFlag[n]; return ok })
		for i, f := range flags {
			f = strings.TrimPrefix(f, "--")
			flags[i] = f
			if _, ok := byFlag[f]; !ok {
				t.Errorf("README documents the flag --%s, which serve does not have", f)
			}
			documentedFlag[f] = true
		}
		defs := backticked(r.def)
		for i, e := range envs {
			s, ok := byEnv[e]
			if !ok {
				t.Errorf("README documents %s, which serve does not read", e)
				continue
			}
			documentedEnv[e] = true
			if len(flags) == len(envs) && s.flag != flags[i] {
				t.Errorf("README pairs %s with --%s; serve reads it with --%s", e, flags[i], s.flag)
			}
			if s.value == nil {
				continue // read by another package with its own defaults
			}
			want := s.value(&defaults).String()
			if want == "" {
				continue // unset: documented in words
			}
			candidates := defs
			if len(defs) == len(envs) {
				candidates = defs[i : i+1]
			}
			if !slices.ContainsFunc(candidates, func(d string) bool { return sameValue(s, d, want) }) {
				t.Errorf("README gives %s the default %v; serve's is %s", e, candidates, want)
			}
		}
	}
	var missing []string
	for _, s := range settings {
		if !documentedEnv[s.env] {
			missing = append(missing, s.env)
		}
		if s.flag != "" && !documentedFlag[s.flag] {
			missing = append(missing, "--"+s.flag)
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("serve reads %s, which the README's configuration tables do not document", m)
	}
}

// sameValue tells whether the README's default d parses to want in the
// setting's own syntax ("75s" is "1m15s").
func sameValue(s setting, d, want string) bool {
	c := defaultConfig()
	v := s.value(&c)
	return v.Set(d) == nil && v.String() == want
}

type readmeRow struct{ flags, variables, def string }

// readmeRows are the rows of every table headed | flag | variable | default | meaning |.
func readmeRows(readme string) []readmeRow {
	var rows []readmeRow
	in := false
	for _, line := range strings.Split(readme, "\n") {
		switch {
		case strings.HasPrefix(line, "| flag | variable | default | meaning |"):
			in = true
		case !strings.HasPrefix(line, "|"):
			in = false
		case in && !strings.HasPrefix(line, "|---"):
			cells := strings.Split(line, "|")
			if len(cells) >= 5 {
				rows = append(rows, readmeRow{flags: cells[1], variables: cells[2], def: cells[3]})
			}
		}
	}
	return rows
}

var backtick = regexp.MustCompile("`([^`]*)`")

func backticked(cell string) []string {
	var out []string
	for _, m := range backtick.FindAllStringSubmatch(cell, -1) {
		out = append(out, m[1])
	}
	return out
}

// expand writes out the README's shorthand: after a full name, "…_KEY" (or
// "-key" after a flag) is that name with an ending replaced, the longest
// stem that makes a known name.
func expand(names []string, sep string, known func(string) bool) []string {
	var out []string
	full := ""
	for _, n := range names {
		short, isShort := strings.CutPrefix(n, "…"+sep)
		if !isShort && sep == "-" && !strings.HasPrefix(n, "--") {
			short, isShort = strings.CutPrefix(n, "-")
		}
		if !isShort || full == "" {
			full = n
			out = append(out, n)
			continue
		}
		stem, resolved := strings.TrimPrefix(full, "--"), ""
		for i := strings.LastIndex(stem, sep); i > 0 && resolved == ""; i = strings.LastIndex(stem, sep) {
			stem = stem[:i]
			if known(stem + sep + short) {
				resolved = stem + sep + short
			}
		}
		if resolved == "" {
			resolved = n // reported as unknown
		}
		out = append(out, resolved)
	}
	return out
}
