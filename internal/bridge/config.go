package bridge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/proto/ditto"
)

// Authentication modes of Config.Auth.
const (
	AuthPreAuthenticated = "pre-authenticated"
	AuthJWT              = "jwt"
)

// Defaults (spec §2's settings table).
const (
	DefaultReconnectMin    = time.Second
	DefaultReconnectMax    = 120 * time.Second
	DefaultPingInterval    = 30 * time.Second
	DefaultMaxInFlight     = 200
	DefaultCommandSessions = 16
)

// Config is how a Link reaches Ditto's gateway.
type Config struct {
	URI string // DITTOCONN_DITTO_WS_URI, e.g. ws://host:8080/ws/2 ; wss:// for TLS
	// Auth is AuthPreAuthenticated (default; the gateway must run with
	// pre-authentication enabled and be reached directly) or AuthJWT.
	Auth string
	// Token yields the bearer token and its expiry (jwt only); OAuthTokenSource
	// builds one for the client-credentials flow. Called with a deadline.
	Token func(ctx context.Context) (token string, expiry time.Time, err error)
	TLSCA string // PEM file of the CA for wss:// (unset: the system's roots)
	// ReconnectMin, ReconnectMax bound the reconnect backoff (doubling, with
	// jitter; back to ReconnectMin after a session stayed up a minute).
	ReconnectMin, ReconnectMax time.Duration
	PingInterval               time.Duration // two missed pongs end the session
	// MaxInFlight bounds the unanswered commands of one session; Send waits
	// for room, at most until the command's timeout, then answers 503.
	MaxInFlight int
	// CommandSessions bounds the command-only sessions (sources whose
	// authorization context no target shares), least recently used closed first.
	CommandSessions int
	Logger          zerolog.Logger
	Now             func() time.Time
}

// withDefaults fills what is unset.
func (c Config) withDefaults() Config {
	if c.Auth == "" {
		c.Auth = AuthPreAuthenticated
	}
	if c.ReconnectMin <= 0 {
		c.ReconnectMin = DefaultReconnectMin
	}
	if c.ReconnectMax <= 0 {
		c.ReconnectMax = DefaultReconnectMax
	}
	if c.ReconnectMax < c.ReconnectMin {
		c.ReconnectMax = c.ReconnectMin
	}
	if c.PingInterval <= 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.CommandSessions <= 0 {
		c.CommandSessions = DefaultCommandSessions
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Settings read by ConfigFromEnv (dittoconn's own names: Ditto has none for
// this, spec §2).
const (
	EnvURI          = "DITTOCONN_DITTO_WS_URI"
	EnvAuth         = "DITTOCONN_DITTO_AUTH"
	EnvTokenURL     = "DITTOCONN_DITTO_OAUTH_TOKEN_URL"
	EnvClientID     = "DITTOCONN_DITTO_OAUTH_CLIENT_ID"
	EnvClientSecret = "DITTOCONN_DITTO_OAUTH_CLIENT_SECRET"
	EnvScope        = "DITTOCONN_DITTO_OAUTH_SCOPE"
	EnvTLSCA        = "DITTOCONN_DITTO_TLS_CA"
	EnvReconnectMin = "DITTOCONN_DITTO_RECONNECT_MIN"
	EnvReconnectMax = "DITTOCONN_DITTO_RECONNECT_MAX"
	EnvPingInterval = "DITTOCONN_DITTO_PING_INTERVAL"
	EnvMaxInFlight  = "DITTOCONN_DITTO_MAX_IN_FLIGHT"
)

// ConfigFromEnv reads the bridge's settings. An unset DITTOCONN_DITTO_WS_URI
// is standalone mode: the zero Config and no error, and then every other
// DITTOCONN_DITTO_ setting is refused rather than ignored. Invalid values
// are refused with an error naming the variable; the client secret never
// appears in an error.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	uri := get(EnvURI)
	if uri == "" {
		for _, k := range []string{EnvAuth, EnvTokenURL, EnvClientID, EnvClientSecret, EnvScope, EnvTLSCA,
			EnvReconnectMin, EnvReconnectMax, EnvPingInterval, EnvMaxInFlight} {
			if get(k) != "" {
				return Config{}, fmt.Errorf("%s is set but %s is not: the Ditto bridge is off in standalone mode", k, EnvURI)
			}
		}
		return Config{}, nil
	}
	cfg := Config{URI: uri, Auth: AuthPreAuthenticated, ReconnectMin: DefaultReconnectMin,
		ReconnectMax: DefaultReconnectMax, PingInterval: DefaultPingInterval, MaxInFlight: DefaultMaxInFlight,
		CommandSessions: DefaultCommandSessions}
	u, err := url.Parse(uri)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return Config{}, fmt.Errorf("%s %q: want ws://host:port/ws/2 or wss://…", EnvURI, maskURI(uri))
	}
	if u.User != nil {
		return Config{}, fmt.Errorf("%s %q: credentials in the URI are not used; use %s", EnvURI, maskURI(uri), EnvAuth)
	}
	switch a := get(EnvAuth); a {
	case "", AuthPreAuthenticated:
	case AuthJWT:
		cfg.Auth = AuthJWT
	default:
		return Config{}, fmt.Errorf("%s %q: want %q or %q", EnvAuth, a, AuthPreAuthenticated, AuthJWT)
	}
	oauth := OAuth{TokenURL: get(EnvTokenURL), ClientID: get(EnvClientID), ClientSecret: getenv(EnvClientSecret), Scope: get(EnvScope)}
	if cfg.Auth == AuthJWT {
		var missing []string
		for _, kv := range [][2]string{{EnvTokenURL, oauth.TokenURL}, {EnvClientID, oauth.ClientID}, {EnvClientSecret, oauth.ClientSecret}} {
			if kv[1] == "" {
				missing = append(missing, kv[0])
			}
		}
		if len(missing) > 0 {
			return Config{}, fmt.Errorf("%s=jwt needs %s", EnvAuth, strings.Join(missing, ", "))
		}
		tu, err := url.Parse(oauth.TokenURL)
		if err != nil || (tu.Scheme != "http" && tu.Scheme != "https") || tu.Host == "" {
			return Config{}, fmt.Errorf("%s %q: want an http(s) URL", EnvTokenURL, maskURI(oauth.TokenURL))
		}
		cfg.Token = OAuthTokenSource(oauth)
	} else {
		for _, k := range []string{EnvTokenURL, EnvClientID, EnvClientSecret, EnvScope} {
			if get(k) != "" {
				return Config{}, fmt.Errorf("%s is set but %s is %q: the token is used only with jwt", k, EnvAuth, AuthPreAuthenticated)
			}
		}
	}
	if ca := get(EnvTLSCA); ca != "" {
		if u.Scheme != "wss" {
			return Config{}, fmt.Errorf("%s is set but %s is not wss://", EnvTLSCA, EnvURI)
		}
		if _, err := loadCA(ca); err != nil {
			return Config{}, fmt.Errorf("%s: %v", EnvTLSCA, err)
		}
		cfg.TLSCA = ca
	}
	dur := func(k string, dst *time.Duration) error {
		v := get(k)
		if v == "" {
			return nil
		}
		d, err := parseSettingDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("%s %q: want a positive duration such as 1s, 500ms or 2m", k, v)
		}
		*dst = d
		return nil
	}
	for _, d := range []struct {
		k   string
		dst *time.Duration
	}{{EnvReconnectMin, &cfg.ReconnectMin}, {EnvReconnectMax, &cfg.ReconnectMax}, {EnvPingInterval, &cfg.PingInterval}} {
		if err := dur(d.k, d.dst); err != nil {
			return Config{}, err
		}
	}
	if cfg.ReconnectMin > cfg.ReconnectMax {
		return Config{}, fmt.Errorf("%s (%v) is above %s (%v)", EnvReconnectMin, cfg.ReconnectMin, EnvReconnectMax, cfg.ReconnectMax)
	}
	if v := get(EnvMaxInFlight); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return Config{}, fmt.Errorf("%s %q: want a whole number of at least 1", EnvMaxInFlight, v)
		}
		cfg.MaxInFlight = n
	}
	return cfg, nil
}

// parseSettingDuration reads "30s", "1m", "500ms" (Go's syntax, which
// covers Ditto's config durations) or a bare number of seconds.
func parseSettingDuration(s string) (time.Duration, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n > int64(24*time.Hour/time.Second) {
			return 0, errors.New("too long")
		}
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(s)
}

// maskURI hides user info in a URI shown in an error or a log.
func maskURI(s string) string { return ditto.MaskUserInfo(s) }

// loadCA reads a PEM bundle of CA certificates.
func loadCA(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// tlsConfig is the client TLS of wss:// sessions: TLSCA's roots when set.
func (c Config) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.TLSCA != "" {
		pool, err := loadCA(c.TLSCA)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// OAuth is an OAuth 2.0 client-credentials grant (RFC 6749 §4.4) against
// an identity provider whose tokens Ditto's gateway accepts.
type OAuth struct {
	TokenURL, ClientID, ClientSecret, Scope string
	HTTPClient                              *http.Client // nil: a client with TokenTimeout
}

// TokenTimeout bounds one token request (when the caller's context has no
// earlier deadline).
const TokenTimeout = 10 * time.Second

// misconfigured is a failure retrying cannot cure by itself (the gateway or
// the identity provider refused the credentials, an unreadable CA).
type misconfigured struct{ why string }

func (m misconfigured) Error() string { return m.why }

func isMisconfigured(err error) bool {
	var m misconfigured
	return errors.As(err, &m)
}

// OAuthTokenSource returns a Config.Token that fetches tokens with the
// client-credentials grant and reuses one until half its lifetime passed (the
// sessions refresh at three quarters of what is left, so a refresh always
// gets a new token). Safe for concurrent use. The secret is sent in the
// request body and never logged nor put into an error.
func OAuthTokenSource(o OAuth) func(ctx context.Context) (string, time.Time, error) {
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: TokenTimeout}
	}
	var mu sync.Mutex
	var token string
	var expiry, renew time.Time
	return func(ctx context.Context) (string, time.Time, error) {
		mu.Lock()
		defer mu.Unlock()
		now := time.Now()
		if token != "" && now.Before(renew) {
			return token, expiry, nil
		}
		ctx, cancel := context.WithTimeout(ctx, TokenTimeout)
		defer cancel()
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {o.ClientID}, "client_secret": {o.ClientSecret}}
		if o.Scope != "" {
			form.Set("scope", o.Scope)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.TokenURL, strings.NewReader(form.Encode()))
		if err != nil {
			return "", time.Time{}, misconfigured{"token request to " + maskURI(o.TokenURL) + " cannot be built"}
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // the URL is shown once, masked, below
			}
			return "", time.Time{}, fmt.Errorf("token endpoint %s: %v", maskURI(o.TokenURL), err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if resp.StatusCode != http.StatusOK {
			err := fmt.Errorf("token endpoint %s answered %d", maskURI(o.TokenURL), resp.StatusCode)
			if resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
				return "", time.Time{}, misconfigured{err.Error()}
			}
			return "", time.Time{}, err
		}
		var tr struct {
			AccessToken string          `json:"access_token"`
			ExpiresIn   json.RawMessage `json:"expires_in"`
		}
		if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
			return "", time.Time{}, fmt.Errorf("token endpoint %s: no access_token in its answer", maskURI(o.TokenURL))
		}
		life := time.Hour // RFC 6749 makes expires_in optional
		if secs, err := strconv.ParseFloat(strings.Trim(string(tr.ExpiresIn), `"`), 64); err == nil && secs > 0 {
			life = time.Duration(secs * float64(time.Second))
		}
		token, expiry, renew = tr.AccessToken, now.Add(life), now.Add(life/2)
		return token, expiry, nil
	}
}
