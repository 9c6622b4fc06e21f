package rql

import (
	"math/rand"
	"regexp"
	"strings"
	"testing"
)

type mapResolver map[string]string

func (m mapResolver) Lookup(prefix, name string) (string, bool) {
	v, ok := m[prefix+":"+name]
	return v, ok
}

const thingDoc = `{
  "thingId": "org.eclipse.ditto:fancy-car-11",
  "_namespace": "org.eclipse.ditto",
  "policyId": "org.eclipse.ditto:policy",
  "_revision": 42,
  "attributes": {
    "owner": "SID123",
    "location": "living-room",
    "floor": "upper floor",
    "key1": "just-some-chars-unknown",
    "count": 10,
    "ratio": 0.5,
    "big": 9007199254740993,
    "numstr": "10",
    "flag": true,
    "nothing": null,
    "list": [1, 2],
    "obj": {"a": 1},
    "emptyStr": "",
    "emptyList": [],
    "multi": "line1\nline2"
  },
  "features": {
    "lamp": {"properties": {"on": false, "brightness": 75}},
    "feature_1": {}
  }
}`

func TestEvaluate(t *testing.T) {
	doc, err := DecodeDocument([]byte(thingDoc))
	if err != nil {
		t.Fatal(err)
	}
	ph := mapResolver{
		"topic:action":     "modified",
		"topic:criterion":  "events",
		"resource:path":    "/attributes/owner",
		"header:x":         "7",
		"time:now":         "2024-01-01T00:00:00Z",
		"topic:namespace":  "org.eclipse.ditto",
		"topic:entityName": "",
	}
	cases := []struct {
		filter string
		want   bool
	}{
		// examples of basic-rql.md
		{`eq(attributes/owner,"SID123")`, true},
		{`ne(attributes/owner,"SID123")`, false},
		{`gt(thingId,"A000")`, true},
		{`ge(thingId,"org.eclipse.ditto:fancy-car-11")`, true},
		{`lt(thingId,"A000")`, false},
		{`le(thingId,"A000")`, false},
		{`in(thingId,"A000","AB00","org.eclipse.ditto:fancy-car-11")`, true},
		{`in(thingId,"A000","AB00","AZ99")`, false},
		{`like(attributes/key1,"*unknown")`, true},
		{`like(attributes/key1,"just-some*")`, true},
		{`like(attributes/key1,"*some-chars*")`, true},
		{`like(attributes/key1,"just-som?-char?-unkn?wn")`, true},
		{`like(attributes/key1,"just-som?-char?-unkn?w")`, false},
		{`ilike(attributes/key1,"*SOME-CHARS*")`, true},
		{`like(attributes/key1,"*SOME-CHARS*")`, false},
		{`exists(features/feature_1)`, true},
		{`exists(features/feature_2)`, false},
		{`and(exists(features/lamp),eq(attributes/location,"living-room"))`, true},
		{`and(eq(attributes/floor,"upper floor"),eq(attributes/location,"living-room"))`, true},
		{`or(eq(attributes/floor,"cellar"),eq(attributes/location,"living-room"))`, true},
		{`or(eq(attributes/floor,"cellar"),eq(attributes/location,"kitchen"))`, false},
		{`not(like(thingId,"org.eclipse.ditto:blocked*"))`, true},
		{`not(like(thingId,"org.eclipse.ditto:fancy*"))`, false},
		// leading slash is the same property
		{`eq(/attributes/owner,"SID123")`, true},
		// numbers
		{`eq(attributes/count,10)`, true},
		{`eq(attributes/count,10.0)`, true},
		{`gt(attributes/count,9)`, true},
		{`lt(attributes/ratio,1)`, true},
		{`eq(attributes/ratio,0.5)`, true},
		{`eq(_revision,42)`, true},
		{`eq(attributes/big,9007199254740993)`, true},
		{`eq(attributes/big,9007199254740992)`, false},
		// number vs string: numeric when the string is a number
		{`eq(attributes/count,"10")`, true},
		{`eq(attributes/count,"1e1")`, true},
		{`eq(attributes/numstr,10)`, true},
		{`gt(attributes/numstr,9)`, true},
		{`eq(attributes/count,"ten")`, false},
		// different types compare as text
		{`eq(attributes/flag,"true")`, true},
		{`eq(attributes/flag,true)`, true},
		{`eq(attributes/flag,false)`, false},
		{`gt(attributes/flag,false)`, true},
		// null
		{`eq(attributes/nothing,null)`, true},
		{`ne(attributes/nothing,null)`, false},
		{`eq(attributes/owner,null)`, false},
		{`gt(attributes/nothing,1)`, false},
		{`gt(attributes/count,null)`, false},
		{`exists(attributes/nothing)`, true},
		// missing fields
		{`eq(attributes/missing,1)`, false},
		{`ne(attributes/missing,1)`, true},
		{`eq(attributes/missing,null)`, false},
		{`exists(attributes/missing)`, false},
		{`gt(attributes/missing,1)`, false},
		{`in(attributes/missing,1,null)`, false},
		// arrays and objects never compare
		{`eq(attributes/list,1)`, false},
		{`ne(attributes/list,1)`, true},
		{`eq(attributes/obj,1)`, false},
		{`exists(attributes/list)`, true},
		{`eq(attributes/list/0,1)`, false},
		{`like(attributes/count,"1*")`, false},
		// like/ilike details
		{`like(attributes/multi,"line1*")`, false},
		{`like(attributes/multi,"line1?line2")`, false},
		{`like(attributes/owner,"*")`, true},
		{`like(attributes/owner,"**D1**")`, true},
		{`like(attributes/owner,"SID12")`, false},
		{`ilike(attributes/owner,"sid123")`, true},
		// empty
		{`empty(attributes/emptyStr)`, true},
		{`empty(attributes/emptyList)`, true},
		{`empty(attributes/missing)`, true},
		{`empty(attributes/nothing)`, true},
		{`empty(features/feature_1)`, true},
		{`empty(attributes/owner)`, false},
		// placeholders as properties
		{`eq(topic:action,"modified")`, true},
		{`in(topic:action,"created","modified")`, true},
		{`ne(topic:action,"deleted")`, true},
		{`like(resource:path,"/attributes/*")`, true},
		{`eq(header:x,7)`, true},
		{`exists(topic:subject)`, false},
		{`exists(topic:action)`, true},
		{`empty(topic:entityName)`, true},
		{`eq(topic:subject,"x")`, false},
		{`and(eq(topic:criterion,"events"),eq(attributes/owner,"SID123"))`, true},
		// placeholder values
		{`eq(attributes/owner,time:now)`, false},
		{`lt(_modified,time:now)`, false},
		{`gt(time:now,"2023")`, true},
		{`eq(attributes/nothing,time:unknown)`, true},
	}
	for _, tc := range cases {
		t.Run(tc.filter, func(t *testing.T) {
			p, err := CompileString(tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Match(doc, ph); got != tc.want {
				t.Fatalf("got %v want %v", got, tc.want)
			}
		})
	}
}

func TestMatchNilResolverAndDoc(t *testing.T) {
	p, err := CompileString(`or(eq(topic:action,"x"),exists(a),empty(b),eq(c,time:now))`)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Match(nil, nil) { // empty(b) on nothing is true
		t.Fatal("want true")
	}
	var np *Predicate
	if np.Match(nil, nil) {
		t.Fatal("nil predicate matched")
	}
}

// TestGlobAgainstRegexp checks the allocation-free matcher against the regular
// expression Ditto builds (quote, '*' → '.*', '?' → '.').
func TestGlobAgainstRegexp(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	gen := func(alpha string, n int) string {
		var b strings.Builder
		for i := rng.Intn(n + 1); i > 0; i-- {
			b.WriteByte(alpha[rng.Intn(len(alpha))])
		}
		return b.String()
	}
	for i := 0; i < 20000; i++ {
		pat := gen("ab*?\n", 6)
		s := gen("ab\n", 7)
		var re strings.Builder
		re.WriteString("^(?:")
		for _, r := range pat {
			switch r {
			case '*':
				re.WriteString(".*")
			case '?':
				re.WriteString(".")
			default:
				re.WriteString(regexp.QuoteMeta(string(r)))
			}
		}
		re.WriteString(")$")
		want := regexp.MustCompile(re.String()).MatchString(s)
		if got := MatchLike(pat, s); got != want {
			t.Fatalf("MatchLike(%q, %q) = %v, regexp says %v", pat, s, got, want)
		}
	}
}

func TestCompileRejectsUnknownNodes(t *testing.T) {
	for _, n := range []Node{&Comparison{Op: "zz"}, &Multi{Op: "out"}, &Logical{Op: "xor"}, nil,
		&Comparison{Op: "eq", Value: []int{1}}} {
		if _, err := Compile(n); err == nil {
			t.Fatalf("Compile(%#v) accepted", n)
		}
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	doc, _ := DecodeDocument([]byte(thingDoc))
	ph := mapResolver{"topic:action": "modified"}
	p, err := CompileString(`and(eq(topic:action,"modified"),gt(attributes/count,5),like(thingId,"org.eclipse.ditto:*"),in(attributes/owner,"a","SID123"),exists(features/lamp/properties/on))`)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Match(doc, ph) {
		t.Fatal("no match")
	}
	if n := testing.AllocsPerRun(100, func() { p.Match(doc, ph) }); n != 0 {
		t.Fatalf("Match allocates %v times", n)
	}
}

func BenchmarkMatch(b *testing.B) {
	doc, _ := DecodeDocument([]byte(thingDoc))
	ph := mapResolver{"topic:action": "modified"}
	p, err := CompileString(`and(eq(topic:action,"modified"),gt(attributes/count,5),like(thingId,"org.eclipse.ditto:*"),in(attributes/owner,"a","SID123"),not(exists(features/lamp/properties/off)))`)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !p.Match(doc, ph) {
			b.Fatal("no match")
		}
	}
}

func BenchmarkParseAndMatch(b *testing.B) {
	doc, _ := DecodeDocument([]byte(thingDoc))
	ph := mapResolver{"topic:action": "modified"}
	const f = `and(eq(topic:action,"modified"),gt(attributes/count,5),like(thingId,"org.eclipse.ditto:*"),in(attributes/owner,"a","SID123"),not(exists(features/lamp/properties/off)))`
	b.ReportAllocs()
	for b.Loop() {
		p, _ := CompileString(f)
		p.Match(doc, ph)
	}
}

func FuzzEvaluate(f *testing.F) {
	f.Add(`and(eq(attributes/count,10),like(thingId,"*"))`, thingDoc)
	f.Add(`or(gt(a,"1e5"),in(b,1,2.5,"x",null,true),empty(c),ilike(d,"?*"))`, `{"a":1,"b":[1],"c":{},"d":"X"}`)
	f.Fuzz(func(t *testing.T, filter, doc string) {
		p, err := CompileString(filter)
		if err != nil {
			return
		}
		d, err := DecodeDocument([]byte(doc))
		if err != nil {
			return
		}
		p.Match(d, mapResolver{"topic:action": doc})
	})
}
