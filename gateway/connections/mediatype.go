package connections

import (
	"mime"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/dittoconn/dittoconn/proto/ditto"
)

// The media types Ditto's route reads: JSON for a connection, text/plain for
// a command, each with the gateway's fallback application/octet-stream
// (additional-accepted-media-types' default, also what Pekko assigns to a
// request without Content-Type). The order is the one Ditto's 415
// description prints, a Java HashSet's iteration order.
var (
	jsonMediaTypes = []string{"application/octet-stream", "application/json"}
	textMediaTypes = []string{"application/octet-stream", "text/plain"}
)

// requireMediaType refuses a request whose media type is not in allowed,
// before its body is read, as Ditto's ContentTypeValidationDirective does.
func requireMediaType(c echo.Context, allowed []string) *ditto.Error {
	got := mediaType(c.Request().Header.Get(echo.HeaderContentType))
	for _, a := range allowed {
		if got == a {
			return nil
		}
	}
	return ditto.MediaTypeUnsupported(got, allowed)
}

// mediaType is the media type Ditto compares: Pekko's parsed type without
// parameters, in lower case; an unparsable header as it was sent.
func mediaType(header string) string {
	if strings.TrimSpace(header) == "" {
		return "application/octet-stream"
	}
	mt, _, err := mime.ParseMediaType(header)
	if err != nil {
		return header
	}
	return mt
}
