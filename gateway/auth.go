package gateway

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"

	"github.com/labstack/echo/v4"
)

// Devops basic authentication, answered the way Pekko HTTP's default
// rejection handler answers for Ditto: 401, text/plain, a Basic challenge.
const (
	devopsUser      = "devops"
	devopsChallenge = `Basic realm="DITTO-DEVOPS",charset=UTF-8`
	msgCredsMissing = "The resource requires authentication, which was not supplied with the request"
	msgCredsInvalid = "The supplied authentication is invalid"
)

// devopsAuth checks "Authorization: Basic" against user devops and the
// configured password. Digests are compared so that neither the contents nor
// the lengths of the secrets show in the timing.
func devopsAuth(password string) echo.MiddlewareFunc {
	wantUser := sha256.Sum256([]byte(devopsUser))
	wantPass := sha256.Sum256([]byte(password))
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if req.Header.Get(echo.HeaderAuthorization) == "" {
				return unauthorized(c, msgCredsMissing)
			}
			user, pass, ok := req.BasicAuth()
			gotUser := sha256.Sum256([]byte(user))
			gotPass := sha256.Sum256([]byte(pass))
			userOK := subtle.ConstantTimeCompare(gotUser[:], wantUser[:])
			passOK := subtle.ConstantTimeCompare(gotPass[:], wantPass[:])
			if !ok || userOK&passOK != 1 {
				// Any other scheme, or bad Basic credentials, count as supplied but invalid.
				return unauthorized(c, msgCredsInvalid)
			}
			return next(c)
		}
	}
}

func unauthorized(c echo.Context, msg string) error {
	c.Response().Header().Set(echo.HeaderWWWAuthenticate, devopsChallenge)
	return c.String(http.StatusUnauthorized, msg)
}
