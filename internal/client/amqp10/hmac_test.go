package amqp10

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
)

func sasConnection(params map[string]any) *model.Connection {
	raw, _ := json.Marshal(params)
	return &model.Connection{ID: "amqp-sas", ConnectionType: model.TypeAMQP10, URI: "amqps://my-hub.azure-devices.net:5671",
		Credentials: &model.Credentials{Type: "hmac", Algorithm: "az-sasl", Parameters: raw}}
}

// TestAzSASLLogin: az-sasl credentials log in with SASL PLAIN as Ditto's
// client does: username "<key name>@sas.root.<hub>", password
// "SharedAccessSignature sr=…&sig=…&se=…&skn=…", where sig is what Azure
// checks: HMAC-SHA256 under the base64-decoded key over the URL-encoded
// resource, a newline and the expiry (recomputed here from Azure's
// documentation of shared access signatures).
func TestAzSASLLogin(t *testing.T) {
	key := []byte("the hub policy key")
	cfg, err := parseConfig(sasConnection(map[string]any{"sharedKeyName": "iothubowner",
		"sharedKey": base64.StdEncoding.EncodeToString(key), "endpoint": "my-hub.azure-devices.net", "ttl": "1h"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.anonymous || cfg.user != "iothubowner@sas.root.my-hub" {
		t.Fatalf("login %q (anonymous %v)", cfg.user, cfg.anonymous)
	}
	token, ok := strings.CutPrefix(cfg.pass, "SharedAccessSignature ")
	if !ok {
		t.Fatalf("password %q", cfg.pass)
	}
	q, err := url.ParseQuery(token)
	if err != nil {
		t.Fatal(err)
	}
	se, _ := strconv.ParseInt(q.Get("se"), 10, 64)
	if left := time.Until(time.Unix(se, 0)); left <= 59*time.Minute || left > time.Hour {
		t.Errorf("expiry in %v, want the ttl of 1h", left)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(url.QueryEscape("my-hub.azure-devices.net") + "\n" + q.Get("se")))
	if q.Get("skn") != "iothubowner" || q.Get("sr") != "my-hub.azure-devices.net" ||
		q.Get("sig") != base64.StdEncoding.EncodeToString(m.Sum(nil)) {
		t.Errorf("token %q does not verify", token)
	}

	// Service Bus: a URL as endpoint, the default ttl of 7 days.
	cfg, err = parseConfig(sasConnection(map[string]any{"sharedKeyName": "RootManageSharedAccessKey",
		"sharedKey": base64.StdEncoding.EncodeToString(key), "endpoint": "https://ns.servicebus.windows.net/q"}))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cfg.pass, "sr=https%3A%2F%2Fns.servicebus.windows.net%2Fq&") ||
		cfg.user != "RootManageSharedAccessKey@sas.root.https://ns.servicebus.windows.net/q" {
		t.Errorf("service bus login %q / %q", cfg.user, cfg.pass)
	}

	_, err = parseConfig(sasConnection(map[string]any{"sharedKeyName": "n", "endpoint": "e"}))
	if !errors.Is(err, client.ErrConfig) || !strings.Contains(err.Error(), "lack the parameter 'sharedKey'") {
		t.Errorf("without sharedKey: %v", err)
	}
}
