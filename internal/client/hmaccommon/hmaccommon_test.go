package hmaccommon

import (
	"strings"
	"testing"
	"time"
)

func TestDittoDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"10m": 10 * time.Minute, "30": 30 * time.Second, "250ms": 250 * time.Millisecond,
		"7d": 7 * 24 * time.Hour, "2w": 14 * 24 * time.Hour, "1h": time.Hour} {
		if got, ok := DittoDuration(in); !ok || got != want {
			t.Errorf("%q: %v %v, want %v", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "ten", "-5s", "1.5h", "5 s", "3x"} {
		if d, ok := DittoDuration(bad); ok {
			t.Errorf("%q accepted as %v", bad, d)
		}
	}
}

func TestEncodeAllButUnreserved(t *testing.T) {
	if got := EncodeAllButUnreserved("a b/é~=", '/'); got != "a%20b/%C3%A9~%3D" {
		t.Errorf("got %s", got)
	}
}

// FuzzDittoDuration: any input is refused or a duration that is not
// negative.
func FuzzDittoDuration(f *testing.F) {
	for _, s := range []string{"10m", "7d", "-1s", "99999999999999999999y", "1mo"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, ok := DittoDuration(s); ok && d < 0 {
			t.Fatalf("%q: negative %v", s, d)
		}
	})
}

// FuzzEncodeAllButUnreserved: the result holds only unreserved characters
// and escapes.
func FuzzEncodeAllButUnreserved(f *testing.F) {
	f.Add("a b/é~=%")
	f.Fuzz(func(t *testing.T, s string) {
		out := EncodeAllButUnreserved(s)
		if strings.Trim(out, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%") != "" {
			t.Fatalf("%q encoded as %q", s, out)
		}
	})
}
