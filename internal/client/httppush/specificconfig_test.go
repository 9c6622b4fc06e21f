package httppush

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
)

// connectedWith is a connected HTTP push client of a connection to uri with
// the given specificConfig.
func connectedWith(t *testing.T, opts Options, uri string, sc map[string]string) client.Client {
	t.Helper()
	c := &model.Connection{ID: "push-" + t.Name(), ConnectionType: model.TypeHTTPPush, ConnectionStatus: "open",
		URI: uri, ClientCount: 1, Targets: []model.Target{{Address: "POST:/x"}}, SpecificConfig: sc}
	cl, err := NewFactory(opts)(client.Env{Connection: c})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cl.Connect(ctx); err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = cl.Close(ctx)
	})
	return cl
}

// TestHTTPPushOmitRequestBody: as in Ditto, GET and DELETE requests carry no
// body by default; specificConfig omitRequestBody replaces that list, and
// an empty value omits no body.
func TestHTTPPushOmitRequestBody(t *testing.T) {
	bodies := make(chan string, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- r.Method + " " + string(b)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		name string
		sc   map[string]string
		want map[string]string // method → body received
	}{
		{"default", nil, map[string]string{"GET": "", "DELETE": "", "POST": "p", "PUT": "p"}},
		{"POST only", map[string]string{"omitRequestBody": "POST"}, map[string]string{"GET": "p", "DELETE": "p", "POST": "", "PUT": "p"}},
		{"none", map[string]string{"omitRequestBody": ""}, map[string]string{"GET": "p", "DELETE": "p", "POST": "p"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl := connectedWith(t, Options{}, srv.URL, tc.sc)
			for method, body := range tc.want {
				if err := publish(t, cl, client.Message{Address: method + ":/x", Payload: []byte("p")}); err != nil {
					t.Fatalf("%s: %v", method, err)
				}
				select {
				case got := <-bodies:
					if got != method+" "+body {
						t.Errorf("received %q, want %q", got, method+" "+body)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("%s: the endpoint received no request", method)
				}
			}
		})
	}
}

// TestHTTPPushParallelism: specificConfig parallelism is how many requests
// are in flight at once: with 2, two requests reach the endpoint together;
// with 1 (the default), never more than one.
func TestHTTPPushParallelism(t *testing.T) {
	for _, tc := range []struct {
		parallelism string
		want        int
	}{{"2", 2}, {"1", 1}} {
		t.Run(tc.parallelism, func(t *testing.T) {
			var mu sync.Mutex
			inFlight, most := 0, 0
			reached := make(chan struct{})
			var once sync.Once
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				inFlight++
				most = max(most, inFlight)
				if inFlight >= tc.want {
					once.Do(func() { close(reached) })
				}
				mu.Unlock()
				// Hold the request until the expected number is in flight,
				// so that a client sending more at once would be seen.
				select {
				case <-reached:
					time.Sleep(20 * time.Millisecond)
				case <-time.After(5 * time.Second):
				}
				mu.Lock()
				inFlight--
				mu.Unlock()
				w.WriteHeader(http.StatusNoContent)
			}))
			t.Cleanup(srv.Close)
			cl := connectedWith(t, Options{}, srv.URL, map[string]string{"parallelism": tc.parallelism})
			var wg sync.WaitGroup
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					if err := cl.Publish(ctx, client.Message{Address: "POST:/x", Payload: []byte("{}")}); err != nil {
						t.Errorf("publish: %v", err)
					}
				}()
			}
			wg.Wait()
			mu.Lock()
			defer mu.Unlock()
			if most != tc.want {
				t.Errorf("at most %d requests in flight, want %d", most, tc.want)
			}
		})
	}
}
