package gateway

import (
	"testing"
	"time"
)

func TestParseTimeout(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string // "code: message"
	}{
		{"10s", 10 * time.Second, ""},
		{"10", 10 * time.Second, ""},
		{"+10", 10 * time.Second, ""},
		{"0", 0, ""},
		{"-0s", 0, ""},
		{"500ms", 500 * time.Millisecond, ""},
		{"60000ms", time.Minute, ""},
		{"1m", time.Minute, ""},
		{"0mo", 0, ""},
		{"0y", 0, ""},
		{"60001ms", 0, "gateway:timeout.invalid: The timeout <60,001ms> is not inside its allowed bounds <0ms - 60,000ms>"},
		{"2m", 0, "gateway:timeout.invalid: The timeout <120,000ms> is not inside its allowed bounds <0ms - 60,000ms>"},
		{"1d", 0, "gateway:timeout.invalid: The timeout <86,400,000ms> is not inside its allowed bounds <0ms - 60,000ms>"},
		{"1w", 0, "gateway:timeout.invalid: The timeout <604,800,000ms> is not inside its allowed bounds <0ms - 60,000ms>"},
		{"1mo", 0, "gateway:timeout.invalid: The timeout <2,629,746,000ms> is not inside its allowed bounds <0ms - 60,000ms>"},
		{"1y", 0, "gateway:timeout.invalid: The timeout <31,556,952,000ms> is not inside its allowed bounds <0ms - 60,000ms>"},
		{"9223372036854775807y", 0, "gateway:timeout.invalid: The timeout <9,223,372,036,854,775,807ms> is not inside its allowed bounds <0ms - 60,000ms>"},
		{"99999999999999999999s", 0, `timeout.invalid: For input string: "99999999999999999999"`},
		{"abc", 0, `timeout.invalid: For input string: "abc"`},
		{"", 0, `timeout.invalid: For input string: ""`},
		{"1.5s", 0, `timeout.invalid: For input string: "1.5s"`},
		{"10 s", 0, `timeout.invalid: For input string: "10 s"`},
		{"s", 0, `timeout.invalid: For input string: "s"`},
		{"-5s", 0, "timeout.invalid: The duration must not be negative but was <-5s>!"},
		{"-5", 0, "timeout.invalid: The duration must not be negative but was <-5>!"},
		{"-1ms", 0, "timeout.invalid: The duration must not be negative but was <-1ms>!"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseTimeout(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || err.Status != 400 {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseTimeout(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}
