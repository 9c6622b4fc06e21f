package httpbody

import (
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"
)

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestRead(t *testing.T) {
	for _, tt := range []struct {
		name          string
		body          io.Reader
		contentLength int64 // -1: unknown, as for a chunked body
		limit         int64
		want          string
		wantCode      string
		wantStatus    int
	}{
		{"under the cap", strings.NewReader("12345"), 5, 5, "12345", "", 0},
		{"no cap", strings.NewReader("12345"), 5, 0, "12345", "", 0},
		{"declared over the cap", strings.NewReader("123456"), 6, 5, "", "gateway:request.entity.too.large", 413},
		{"streamed over the cap", strings.NewReader("123456"), -1, 5, "", "gateway:request.entity.too.large", 413},
		{"broken off", failingReader{}, -1, 5, "", "json.invalid", 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/", tt.body)
			req.ContentLength = tt.contentLength
			c := echo.New().NewContext(req, httptest.NewRecorder())
			got, derr := Read(c, tt.limit, zerolog.Nop())
			if tt.wantCode == "" {
				if derr != nil || string(got) != tt.want {
					t.Fatalf("Read = %q, %v; want %q", got, derr, tt.want)
				}
				return
			}
			if derr == nil || derr.Code != tt.wantCode || derr.Status != tt.wantStatus {
				t.Fatalf("Read error = %+v, want %d %s", derr, tt.wantStatus, tt.wantCode)
			}
		})
	}
}
