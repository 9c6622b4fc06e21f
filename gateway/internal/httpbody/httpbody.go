// Package httpbody reads HTTP request bodies for both gateway APIs (piggyback and
// /api/2/connections) under a size cap, failing with the errors Ditto's
// gateway answers. The whole body is held in memory, so the cap bounds what
// one request costs.
package httpbody

import (
	"errors"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/proto/ditto"
)

// Read returns the request body of c, at most limit bytes (limit <= 0: no
// cap). A larger body is 413 gateway:request.entity.too.large, told by the
// Content-Length before anything is read; a body that breaks off is
// json.invalid in Ditto's words, and the cause goes to log at debug level.
func Read(c echo.Context, limit int64, log zerolog.Logger) ([]byte, *ditto.Error) {
	req := c.Request()
	if limit > 0 && req.ContentLength > limit {
		return nil, ditto.RequestEntityTooLarge(limit)
	}
	rd := io.Reader(req.Body)
	if limit > 0 {
		rd = http.MaxBytesReader(c.Response().Writer, req.Body, limit)
	}
	body, err := io.ReadAll(rd)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, ditto.RequestEntityTooLarge(limit)
		}
		log.Debug().Err(err).Msg("reading request body failed")
		return nil, ditto.JSONInvalid("Failed to parse JSON value from reader!")
	}
	return body, nil
}
