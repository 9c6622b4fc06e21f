package connections

import (
	"testing"

	"github.com/dittoconn/dittoconn/proto/ditto"
)

func TestParseOption(t *testing.T) {
	cur := EncodeCursor("mqtt-7")
	tests := []struct {
		option string
		want   Page
		bad    bool
	}{
		{"size(10)", Page{Size: 10}, false},
		{"cursor(" + cur + ")", Page{Size: DefaultPageSize, After: "mqtt-7"}, false},
		{"size(3),cursor(" + cur + ")", Page{Size: 3, After: "mqtt-7"}, false},
		{" cursor(" + cur + ") , size(200) ", Page{Size: 200, After: "mqtt-7"}, false},
		{"sort(+id),size(1)", Page{Size: 1}, false},
		{"", Page{}, true},
		{"size(0)", Page{}, true},
		{"size(201)", Page{}, true},
		{"size(-1)", Page{}, true},
		{"size(x)", Page{}, true},
		{"size(1),size(2)", Page{}, true},
		{"size(1", Page{}, true},
		{"limit(0,10)", Page{}, true},
		{"sort(-id)", Page{}, true},
		{"cursor()", Page{}, true},
		{"cursor(not base64!)", Page{}, true},
		{"cursor(" + EncodeCursor("bad id") + ")", Page{}, true},
		{"cursor(bXF0dC03)", Page{}, true}, // base64 of an id without the version prefix
	}
	for _, tt := range tests {
		t.Run(tt.option, func(t *testing.T) {
			got, err := ParseOption(tt.option)
			if tt.bad {
				if err == nil || err.Code != ditto.CodeOptionInvalid || err.Status != 400 {
					t.Fatalf("ParseOption(%q) = %+v, %v; want option.invalid", tt.option, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseOption(%q) = %+v, %v; want %+v", tt.option, got, err, tt.want)
			}
		})
	}
}

func TestCursorRoundTrip(t *testing.T) {
	for _, id := range []string{"a", "mqtt:1_x-2", "Z"} {
		got, ok := decodeCursor(EncodeCursor(id))
		if !ok || got != id {
			t.Fatalf("cursor of %q decodes to %q, %v", id, got, ok)
		}
	}
}

func FuzzParseOption(f *testing.F) {
	f.Add("size(3),cursor(" + EncodeCursor("x") + ")")
	f.Add("sort(+id)")
	f.Fuzz(func(t *testing.T, option string) {
		p, err := ParseOption(option)
		if err == nil && (p.Size < 1 || p.Size > MaxPageSize) {
			t.Fatalf("accepted size %d", p.Size)
		}
	})
}
