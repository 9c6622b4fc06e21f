package test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/poll"
)

// TestBinaryBlockedHosts: the binary loads Ditto's blocked-host settings
// (CONNECTIVITY_CONNECTION_BLOCKED_HOSTNAMES, …_ALLOWED_HOSTNAMES,
// …_BLOCKED_SUBNETS, …_BLOCKED_HOST_REGEX) into the connection
// validation: create, modify and testConnection of a connection to a
// blocked host, subnet or OAuth token endpoint answer Ditto's 400
// connectivity:connection.configuration.invalid, and an allowed hostname
// passes although it resolves to loopback.
func TestBinaryBlockedHosts(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := blackbox.BuildBinary(t)
	p := blackbox.StartBinary(t, bin, "DITTOCONN_DATA_DIR="+t.TempDir(), "INSTANCE_INDEX=bin-blocked", "MONGO_DB_URI=",
		"CONNECTIVITY_CONNECTION_BLOCKED_HOSTNAMES=localhost",
		"CONNECTIVITY_CONNECTION_BLOCKED_SUBNETS=169.254.0.0/16, 100.64.0.0/10",
		"CONNECTIVITY_CONNECTION_BLOCKED_HOST_REGEX=.*\\.internal",
		"CONNECTIVITY_CONNECTION_ALLOWED_HOSTNAMES=localhost")
	send := func(typ string, conn map[string]any) map[string]any {
		t.Helper()
		field := "connection"
		st, m := p.Piggyback(t, map[string]any{"targetActorSelection": blackbox.Shard,
			"headers": map[string]any{"aggregate": false}, "piggybackCommand": blackbox.Cmd(typ, field, conn)})
		if st != 200 && st != 400 {
			t.Fatalf("%s: HTTP %d %v", typ, st, m)
		}
		return m
	}
	const prefix = "The configured host '"
	const desc = "The host is blocked or resolves to a forbidden address. If the host is valid, add it to the allowed hostnames configuration."
	wantBlocked := func(m map[string]any, host, because string) {
		t.Helper()
		blackbox.WantField(t, m, 400, "status")
		blackbox.WantField(t, m, "connectivity:connection.configuration.invalid", "error")
		blackbox.WantField(t, m, prefix+host+"' may not be used for the connection because the host is blocked: "+because, "message")
		blackbox.WantField(t, m, desc, "description")
	}

	conn := blackbox.MQTTConnection("blocked-1", "closed")
	conn["uri"] = "tcp://127.0.0.1:1883"
	wantBlocked(send(ditto.CreateConnection, conn), "127.0.0.1", "the hostname resolved to a loopback address (127.0.0.1).")
	conn["uri"] = "tcp://10.0.0.1:1883"
	wantBlocked(send(ditto.TestConnection, conn), "10.0.0.1", "the hostname resolved to a site local address (10.0.0.1).")
	conn["uri"] = "tcp://169.254.169.254:80"
	wantBlocked(send(ditto.CreateConnection, conn), "169.254.169.254",
		"the hostname resolved to address 169.254.169.254 which resides in blocked subnet 169.254.0.0/16.")
	conn["uri"] = "tcp://100.64.1.2:1883"
	wantBlocked(send(ditto.TestConnection, conn), "100.64.1.2",
		"the hostname resolved to address 100.64.1.2 which resides in blocked subnet 100.64.0.0/10.")
	conn["uri"] = "tcp://broker.internal:1883"
	wantBlocked(send(ditto.CreateConnection, conn), "broker.internal", "the host is blocked.")

	// An allowed name passes though it resolves to loopback; modifying it
	// to a blocked address is refused.
	conn["uri"] = "tcp://localhost:1883"
	m := send(ditto.CreateConnection, conn)
	blackbox.WantField(t, m, 201, "status")
	conn["uri"] = "tcp://127.0.0.2:1883"
	wantBlocked(send(ditto.ModifyConnection, conn), "127.0.0.2", "the hostname resolved to a loopback address (127.0.0.2).")

	// An OAuth token endpoint is checked as the URI is.
	push := map[string]any{"id": "blocked-push", "connectionType": "http-push", "connectionStatus": "closed",
		"uri": "https://192.0.2.10:443", "sources": []any{},
		"targets": []any{map[string]any{"address": "POST:/x", "topics": []string{"_/_/things/twin/events"},
			"authorizationContext": []string{"nginx:ditto"}}},
		"credentials": map[string]any{"type": "oauth-client-credentials", "tokenEndpoint": "https://169.254.169.254/token",
			"clientId": "c", "clientSecret": "s", "requestedScopes": "a"}}
	wantBlocked(send(ditto.CreateConnection, push), "169.254.169.254",
		"the hostname resolved to address 169.254.169.254 which resides in blocked subnet 169.254.0.0/16.")
}

// TestBinaryBlockedHostAtConnect: a connection stored before its host was
// blocked is checked again when it connects: after a restart with the
// block list it is misconfigured with Ditto's message and never dialled.
func TestBinaryBlockedHostAtConnect(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := blackbox.BuildBinary(t)
	dir := t.TempDir()
	env := []string{"DITTOCONN_DATA_DIR=" + dir, "INSTANCE_INDEX=bin-blocked-2", "MONGO_DB_URI="}
	p := blackbox.StartBinary(t, bin, env...)
	conn := blackbox.MQTTConnection("blocked-later", "open")
	conn["uri"] = "tcp://127.0.0.1:9" // nothing listens: the status says so until the host is blocked
	st, m := p.Piggyback(t, map[string]any{"targetActorSelection": blackbox.Shard,
		"headers": map[string]any{"aggregate": false}, "piggybackCommand": blackbox.Cmd(ditto.CreateConnection, "connection", conn)})
	if st != 200 {
		t.Fatalf("create: %d %v", st, m)
	}
	blackbox.WantField(t, m, 201, "status")
	p.Stop(t)

	p = blackbox.StartBinary(t, bin, append(env, "CONNECTIVITY_CONNECTION_BLOCKED_HOSTNAMES=localhost")...)
	const want = "The configured host '127.0.0.1' may not be used for the connection because the host is blocked: the hostname resolved to a loopback address (127.0.0.1)."
	var last map[string]any
	poll.Check(t, 30*time.Second, func() error {
		_, last = p.Piggyback(t, map[string]any{"targetActorSelection": blackbox.Shard,
			"headers": map[string]any{"aggregate": false}, "piggybackCommand": blackbox.Cmd(ditto.RetrieveConnectionStatus, "connectionId", "blocked-later")})
		clients, _ := last["clientStatus"].([]any)
		for _, c := range clients {
			cm, _ := c.(map[string]any)
			if d, _ := cm["statusDetails"].(string); cm["status"] == "misconfigured" && strings.Contains(d, want) {
				return nil
			}
		}
		return fmt.Errorf("no misconfigured client entry naming the blocked host: %v", last)
	})
	p.Stop(t)
}
