package gateway

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// CORS lets a browser application on another origin (Ditto's Explorer UI)
// call the API. It is off unless origins are configured.
const (
	corsAllowMethods = "GET, POST, PUT, DELETE, OPTIONS"
	// corsAllowHeaders are sent when a preflight names none: what the
	// Explorer UI and scripts send.
	corsAllowHeaders = "Authorization, Content-Type, If-Match, If-None-Match, correlation-id"
	// corsExposeHeaders are response headers a browser script may read.
	corsExposeHeaders = "Location, correlation-id, entity-revision, ETag"
	// corsMaxAge lets a browser cache a preflight answer (seconds).
	corsMaxAge = "600"
)

// corsOrigins is the set of allowed origins; "*" allows any, but without
// credentials: a browser then sends no cookies or cached basic-auth
// credentials on its own, so a page an operator happens to visit cannot
// drive the API with them. Only origins listed by name get credentials.
type corsOrigins struct {
	any     bool
	origins map[string]bool
}

// newCORSOrigins normalises configured origins: lower case, no trailing
// slash, blanks dropped.
func newCORSOrigins(list []string) corsOrigins {
	o := corsOrigins{origins: map[string]bool{}}
	for _, s := range list {
		s = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), "/")
		switch s {
		case "":
		case "*":
			o.any = true
		default:
			o.origins[s] = true
		}
	}
	return o
}

func (o corsOrigins) empty() bool { return !o.any && len(o.origins) == 0 }

// allows reports whether origin may read answers, and whether with
// credentials. "null" (sandboxed frames, file: pages, redirects) is never
// allowed: any page can make its requests come from it.
func (o corsOrigins) allows(origin string) (ok, credentials bool) {
	if origin == "" || strings.EqualFold(origin, "null") {
		return false, false
	}
	if o.origins[strings.ToLower(origin)] {
		return true, true
	}
	return o.any, false
}

// cors answers preflights before authentication (browsers send them without
// credentials) and marks responses to allowed origins as readable. A named
// origin is echoed with Allow-Credentials, so requests carrying credentials
// work; the wildcard is answered as "*", which browsers never combine with
// credentials.
func cors(o corsOrigins) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			origin := req.Header.Get(echo.HeaderOrigin)
			if origin == "" {
				return next(c) // not a CORS request
			}
			h := c.Response().Header()
			h.Add(echo.HeaderVary, echo.HeaderOrigin)
			preflight := req.Method == http.MethodOptions && req.Header.Get(echo.HeaderAccessControlRequestMethod) != ""
			ok, credentials := o.allows(origin)
			if !ok {
				if preflight {
					return c.String(http.StatusForbidden, "The origin is not allowed to access this resource.")
				}
				return next(c) // the browser withholds the answer: no CORS headers
			}
			if credentials {
				h.Set(echo.HeaderAccessControlAllowOrigin, origin)
				h.Set(echo.HeaderAccessControlAllowCredentials, "true")
			} else {
				h.Set(echo.HeaderAccessControlAllowOrigin, "*")
			}
			if !preflight {
				h.Set(echo.HeaderAccessControlExposeHeaders, corsExposeHeaders)
				return next(c)
			}
			h.Add(echo.HeaderVary, echo.HeaderAccessControlRequestMethod)
			h.Add(echo.HeaderVary, echo.HeaderAccessControlRequestHeaders)
			h.Set(echo.HeaderAccessControlAllowMethods, corsAllowMethods)
			allowHeaders := corsAllowHeaders
			if asked := req.Header.Get(echo.HeaderAccessControlRequestHeaders); asked != "" && validHeaderList(asked) {
				allowHeaders = asked
			}
			h.Set(echo.HeaderAccessControlAllowHeaders, allowHeaders)
			h.Set(echo.HeaderAccessControlMaxAge, corsMaxAge)
			return c.NoContent(http.StatusNoContent)
		}
	}
}

// validHeaderList: a comma-separated list of header names (token chars), so
// that echoing it back cannot inject anything into the response.
func validHeaderList(s string) bool {
	if len(s) > 1024 {
		return false
	}
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			return false
		}
		for i := 0; i < len(name); i++ {
			c := name[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
