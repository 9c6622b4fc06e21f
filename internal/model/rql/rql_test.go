package rql

import (
	"reflect"
	"testing"
)

func TestParseValid(t *testing.T) {
	cases := []struct {
		in   string
		want Node
	}{
		{`eq(attributes/x,1)`, &Comparison{"eq", "attributes/x", int64(1)}},
		{`ne(thingId,"a\"b")`, &Comparison{"ne", "thingId", `a"b`}},
		{`gt(a,1.5)`, &Comparison{"gt", "a", 1.5}},
		{`ge(a,-2)`, &Comparison{"ge", "a", int64(-2)}},
		{`lt(a,'it\'s')`, &Comparison{"lt", "a", "it's"}},
		{`le(a,true)`, &Comparison{"le", "a", true}},
		{`like(a,"x*")`, &Comparison{"like", "a", "x*"}},
		{`ilike(a,null)`, &Comparison{"ilike", "a", nil}},
		{`eq(a,"\u0041")`, &Comparison{"eq", "a", "A"}},
		{`eq(a,time:now)`, &Comparison{"eq", "a", Placeholder{"time:now"}}},
		{`in(a,1,"b",false)`, &Multi{"in", "a", []any{int64(1), "b", false}}},
		{`exists(features/f)`, &Exists{"features/f"}},
		{`empty(a)`, &Empty{"a"}},
		{`not(exists(a))`, &Logical{"not", []Node{&Exists{"a"}}}},
		{`and(eq(a,1), or(eq(b,2),eq(c,3)))`, &Logical{"and", []Node{&Comparison{"eq", "a", int64(1)},
			&Logical{"or", []Node{&Comparison{"eq", "b", int64(2)}, &Comparison{"eq", "c", int64(3)}}}}}},
		{`  eq(a,1)`, &Comparison{"eq", "a", int64(1)}},
		{`eq(a,1 )`, &Comparison{"eq", "a", int64(1)}},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Parse(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v want %#v", got, tc.want)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	for _, in := range []string{
		``, `eq(a,1`, `eq(a)`, `eq(a, 1)`, `eq(a,1x)`, `eq(a,-0)`, `eq(a,01)`, `foo(a,1)`, `eq (a,1)`,
		`and()`, `and(eq(a,1),)`, `in(a)`, `not(eq(a,1),eq(b,2))`, `eq(a,"unterminated)`, `eq(a,"\x")`,
		`eq(a,1)eq(b,2)`, `eq(a,99999999999999999999)`, `eq(a,'\"')`,
	} {
		t.Run(in, func(t *testing.T) {
			if n, err := Parse(in); err == nil {
				t.Fatalf("want error, got %#v", n)
			}
		})
	}
}

func FuzzRQL(f *testing.F) {
	for _, s := range []string{`and(eq(a,1),or(ne(b,"x"),in(c,1,2)))`, `not(exists(a))`, `eq(a,'\u00e4')`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { _, _ = Parse(s) })
}
