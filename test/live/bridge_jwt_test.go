package live

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/bridge"
	"github.com/dittoconn/dittoconn/internal/monitor"
	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/dittoemu"
	"github.com/dittoconn/dittoconn/test/kit"
	"github.com/dittoconn/dittoconn/test/poll"
)

// tokenLife is the lifetime of the identity provider's tokens: short, so
// a few seconds cover several refreshes.
const tokenLife = 2 * time.Second

// idp is an OAuth 2.0 client-credentials endpoint issuing "tok-1",
// "tok-2", … with tokenLife, and the gateway side of its tokens: the
// emulator accepts tok-N for N <= accept (0: every token) as
// integration:reader, expiring when the token does.
type idp struct {
	srv    *httptest.Server
	mu     sync.Mutex
	expiry map[string]time.Time
	n      int
	accept atomic.Int64
}

func startIDP(t *testing.T) *idp {
	p := &idp{expiry: map[string]time.Time{}}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.ParseForm() != nil || r.PostForm.Get("grant_type") != "client_credentials" ||
			r.PostForm.Get("client_id") != "dittoconn" || r.PostForm.Get("client_secret") != "s3cret" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"invalid_request"}`)
			return
		}
		p.mu.Lock()
		p.n++
		tok := fmt.Sprintf("tok-%d", p.n)
		p.expiry[tok] = time.Now().Add(tokenLife)
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":%d}`, tok, int(tokenLife/time.Second))
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *idp) options() dittoemu.Options {
	return dittoemu.Options{
		JWT: func(tok string) (string, bool) {
			p.mu.Lock()
			_, issued := p.expiry[tok]
			p.mu.Unlock()
			n, err := strconv.Atoi(strings.TrimPrefix(tok, "tok-"))
			if a := p.accept.Load(); !issued || err != nil || a > 0 && int64(n) > a {
				return "", false
			}
			return "integration:reader", true
		},
		JWTExpiry: func(tok string) time.Time {
			p.mu.Lock()
			defer p.mu.Unlock()
			return p.expiry[tok]
		},
	}
}

// jwtNode starts a node whose bridge authenticates with the idp's tokens.
func jwtNode(t *testing.T, emu *dittoemu.Emulator, p *idp) *kit.Node {
	t.Helper()
	return kit.Start(t, kit.Bolt().Open(t)(), kit.Options{Verbose: testing.Verbose(), Collector: monitor.NewCollector(),
		Ditto: &bridge.Config{URI: emu.URL(), Auth: bridge.AuthJWT,
			Token:        bridge.OAuthTokenSource(bridge.OAuth{TokenURL: p.srv.URL, ClientID: "dittoconn", ClientSecret: "s3cret"}),
			ReconnectMin: 50 * time.Millisecond, ReconnectMax: 500 * time.Millisecond, PingInterval: 5 * time.Second}})
}

// jwtTarget opens a connection with one twin-event target of
// integration:reader and waits for its session at Ditto.
func jwtTarget(t *testing.T, n *kit.Node, emu *dittoemu.Emulator, id, address string) dittoemu.SessionInfo {
	t.Helper()
	dpOpen(t, n, map[string]any{"id": id, "connectionType": "mqtt", "uri": "tcp://127.0.0.1:1883",
		"specificConfig": map[string]any{"clientId": id},
		"targets": []any{map[string]any{"address": address, "qos": 1,
			"authorizationContext": []string{"integration:reader"}, "topics": []string{"_/_/things/twin/events"}}}})
	var s dittoemu.SessionInfo
	poll.Check(t, 15*time.Second, func() error {
		all := emu.Sessions()
		if len(all) != 1 || len(all[0].Subscriptions) != 1 {
			return fmt.Errorf("sessions at Ditto: %+v", all)
		}
		s = all[0]
		return nil
	})
	return s
}

// TestIntegrationBridgeJWTRefreshInSession: a session opened with a token
// of 2 s lives on past several lifetimes because the bridge sends each new
// token as JWT-TOKEN on the open socket (Ditto would otherwise end it with
// gateway:websocket.session.expired): the same session at Ditto
// throughout, no reconnect, twin events keep reaching the target.
func TestIntegrationBridgeJWTRefreshInSession(t *testing.T) {
	blackbox.NeedBroker(t, "Mosquitto", "127.0.0.1:1883")
	p := startIDP(t)
	emu := dittoemu.Start(t, p.options())
	n := jwtNode(t, emu, p)
	thing := fmt.Sprintf("org.acme:jwt-%d", runID)
	createThing(t, emu, thing, map[string]any{}, map[string][2]bool{"integration:reader": {true, false}})
	id, address := dpID("bridge-jwt"), "bridge/"+fmt.Sprint(runID)+"/jwt/events"
	sub := blackbox.Subscribe(t, "tcp://127.0.0.1:1883", address)
	first := jwtTarget(t, n, emu, id, address)
	if first.Subjects[0] != "integration:reader" || len(first.Subjects) != 1 {
		t.Fatalf("session subjects %v, want the token's integration:reader", first.Subjects)
	}

	start := time.Now()
	pace := time.NewTicker(250 * time.Millisecond) // probes spread over the lifetimes
	defer pace.Stop()
	probes := 0
	for time.Since(start) < 3*tokenLife {
		probes++
		probeEvents(t, emu, thing, sub, probes)
		<-pace.C
	}
	refreshes := emu.JWTRefreshes()
	if len(refreshes) < 2 {
		t.Fatalf("JWT-TOKEN messages at Ditto over %v: %v, want at least 2", time.Since(start), refreshes)
	}
	seen := map[string]bool{}
	for _, r := range refreshes {
		if r.Session != first.ID {
			t.Errorf("a refresh on session %d, want the first session %d", r.Session, first.ID)
		}
		if r.Token == "tok-1" || seen[r.Token] {
			t.Errorf("refresh with token %q: the upgrade's or an earlier refresh's, want a new one", r.Token)
		}
		seen[r.Token] = true
	}
	if all := emu.Sessions(); len(all) != 1 || all[0].ID != first.ID {
		t.Errorf("sessions at Ditto after %d refreshes: %+v, want only session %d", len(refreshes), all, first.ID)
	}
	if r := connectionMetric(t, scrapeMetrics(t, n), id, "dittoconn_ditto_bridge_reconnects_total"); r != 0 {
		t.Errorf("dittoconn_ditto_bridge_reconnects_total = %v, want 0", r)
	}
	if v := emu.Violations(); len(v) > 0 {
		t.Fatalf("frames that break Ditto's schemas: %v", v)
	}
	t.Logf("%d probes, %d refreshes in %v", probes, len(refreshes), time.Since(start))
}

// TestIntegrationBridgeJWTRefreshRejected: Ditto rejecting the refreshed
// token ends the session (gateway:websocket.session.closed); the bridge
// dials again with its current token, which the gateway refuses with 401
// on the upgrade, so the Ditto session shows misconfigured and retrying,
// as for any refused credential; once the gateway accepts the identity
// provider's tokens again, the session opens and events flow.
func TestIntegrationBridgeJWTRefreshRejected(t *testing.T) {
	blackbox.NeedBroker(t, "Mosquitto", "127.0.0.1:1883")
	p := startIDP(t)
	p.accept.Store(1) // the upgrade's token only
	emu := dittoemu.Start(t, p.options())
	n := jwtNode(t, emu, p)
	thing := fmt.Sprintf("org.acme:jwt-rejected-%d", runID)
	createThing(t, emu, thing, map[string]any{}, map[string][2]bool{"integration:reader": {true, false}})
	id, address := dpID("bridge-jwt-rejected"), "bridge/"+fmt.Sprint(runID)+"/jwt-rejected/events"
	sub := blackbox.Subscribe(t, "tcp://127.0.0.1:1883", address)
	first := jwtTarget(t, n, emu, id, address)
	probeEvents(t, emu, thing, sub, 1)

	var entry map[string]any
	poll.Check(t, 15*time.Second, func() error {
		s := status(t, n, id)
		entries := dittoSessionEntries(s)
		if len(entries) != 1 {
			return fmt.Errorf("Ditto session entries: %v", entries)
		}
		entry = entries[0]
		d, _ := entry["statusDetails"].(string)
		want := "ditto session [integration:reader] " + emu.URL() + ": misconfigured (401 on the upgrade); retrying"
		if entry["status"] != "misconfigured" || d != want || s["liveStatus"] != "misconfigured" {
			return fmt.Errorf("liveStatus %v, Ditto session %v; want misconfigured %q", s["liveStatus"], entry, want)
		}
		return nil
	})
	refreshes := emu.JWTRefreshes()
	if len(refreshes) == 0 || refreshes[0].Session != first.ID || refreshes[0].Token != "tok-2" {
		t.Errorf("JWT-TOKEN messages at Ditto %v, want tok-2 first on session %d", refreshes, first.ID)
	}
	if all := emu.Sessions(); len(all) != 0 {
		t.Errorf("sessions at Ditto after the rejected refresh: %+v, want none", all)
	}

	p.accept.Store(0)
	waitLive(t, n, id, "open", "succeeded", 15*time.Second)
	poll.Check(t, 15*time.Second, func() error {
		if all := emu.Sessions(); len(all) != 1 || len(all[0].Subscriptions) != 1 {
			return fmt.Errorf("sessions at Ditto: %+v", all)
		}
		return nil
	})
	probeEvents(t, emu, thing, sub, 2)
	if v := emu.Violations(); len(v) > 0 {
		t.Fatalf("frames that break Ditto's schemas: %v", v)
	}
}
