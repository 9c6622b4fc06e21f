package gateway

import (
	"net"
	"net/http"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/dittoconn/dittoconn/proto/ditto"
)

// perClientCap answers 429 with Ditto's error JSON when one remote address
// already has max requests in flight.
func perClientCap(max int) echo.MiddlewareFunc {
	var mu sync.Mutex
	inFlight := map[string]int{}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			// the peer address, not X-Forwarded-For: a header is the client's to forge
			ip, _, err := net.SplitHostPort(c.Request().RemoteAddr)
			if err != nil {
				ip = c.Request().RemoteAddr
			}
			mu.Lock()
			if inFlight[ip] >= max {
				mu.Unlock()
				return c.JSONBlob(http.StatusTooManyRequests, ditto.TooManyRequests().JSON())
			}
			inFlight[ip]++
			mu.Unlock()
			defer func() {
				mu.Lock()
				if inFlight[ip]--; inFlight[ip] <= 0 {
					delete(inFlight, ip) // keep the map as small as the set of busy clients
				}
				mu.Unlock()
			}()
			return next(c)
		}
	}
}
