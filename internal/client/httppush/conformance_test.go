package httppush

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/client/clienttest"
	"github.com/dittoconn/dittoconn/internal/model"
)

// endpoint is an HTTP server that keeps the bodies it received per path and
// issues OAuth tokens for one client secret.
type endpoint struct {
	srv *httptest.Server

	mu     sync.Mutex
	bodies map[string][][]byte
}

const goodSecret = "the-secret"

func newEndpoint(t *testing.T) *endpoint {
	e := &endpoint{bodies: map[string][][]byte{}}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			_ = r.ParseForm()
			if r.PostForm.Get("client_secret") != goodSecret {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			_, _ = io.WriteString(w, `{"access_token":"t","expires_in":3600}`)
			return
		}
		b, _ := io.ReadAll(r.Body)
		e.mu.Lock()
		e.bodies[r.Method+":"+r.URL.Path] = append(e.bodies[r.Method+":"+r.URL.Path], b)
		e.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func TestIntegrationConformance(t *testing.T) {
	var n atomic.Int64
	clienttest.Run(t, func(t *testing.T) *clienttest.Harness {
		e := newEndpoint(t)
		return &clienttest.Harness{
			Factory: NewFactory(Options{ProbeInterval: 50 * time.Millisecond}),
			Broker:  strings.TrimPrefix(e.srv.URL, "http://"),
			Connection: func(addr string, _ []model.Source, targets []model.Target) *model.Connection {
				return &model.Connection{ID: fmt.Sprintf("push-%d", n.Add(1)), ConnectionType: model.TypeHTTPPush,
					ConnectionStatus: "open", URI: "http://" + addr, Targets: targets, ClientCount: 1}
			},
			BadLogin: func(c *model.Connection, password string) {
				str := func(s string) *string { return &s }
				c.Credentials = &model.Credentials{Type: "oauth-client-credentials", TokenEndpoint: str(e.srv.URL + "/token"),
					ClientID: str("suite"), ClientSecret: str(password)}
			},
			Addresses: func(*testing.T) (string, string) {
				return "", fmt.Sprintf("POST:/in/%d", n.Add(1))
			},
			Listen: func(_ *testing.T, target string) func() [][]byte {
				return func() [][]byte {
					e.mu.Lock()
					defer e.mu.Unlock()
					return append([][]byte(nil), e.bodies[target]...)
				}
			},
			Shape:          Spec.Shape,
			ConnectedOnTCP: true,
		}
	})
}
