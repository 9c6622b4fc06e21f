package httppush

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
)

// OAuth 2 bearer tokens for HTTP push: the client-credentials grant
// (credentials type oauth-client-credentials) and the resource-owner
// password grant (oauth-password), with the form fields Ditto's token
// loader sends. One token is cached per connection client (Ditto's
// token-cache maximum-size 1) and fetched again max-clock-skew before it
// expires; requests wait for a fetch under way instead of starting their
// own.

// tokenSource fetches and caches an access token.
type tokenSource struct {
	endpoint string
	form     url.Values // the token request, the same each time
	http     *http.Client
	skew     time.Duration

	mu      sync.Mutex
	tok     string
	expires time.Time
}

// isOAuth tells whether cr authenticates requests with a bearer token.
func isOAuth(cr *model.Credentials) bool {
	return cr != nil && (cr.Type == "oauth-client-credentials" || cr.Type == "oauth-password")
}

func newTokenSource(cr *model.Credentials, env client.Env, skew time.Duration) (*tokenSource, error) {
	connTLS := env.TLS
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	// Ditto's fields: client id and scope always; the secret always for
	// client credentials, when given for the password grant; the audience
	// when given; then the resource owner's username and password.
	form := url.Values{"client_id": {str(cr.ClientID)}, "scope": {str(cr.RequestedScopes)}}
	switch cr.Type {
	case "oauth-password":
		form.Set("grant_type", "password")
		if cr.ClientSecret != nil {
			form.Set("client_secret", *cr.ClientSecret)
		}
		form.Set("username", str(cr.Username))
		form.Set("password", str(cr.Password))
	default:
		form.Set("grant_type", "client_credentials")
		form.Set("client_secret", str(cr.ClientSecret))
	}
	if cr.Audience != nil {
		form.Set("audience", *cr.Audience)
	}
	ts := &tokenSource{endpoint: str(cr.TokenEndpoint), form: form, skew: skew}
	u, err := url.Parse(ts.endpoint)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("%w: tokenEndpoint cannot be parsed", client.ErrConfig)
	}
	if env.Hosts != nil {
		// Checked when the connection was stored; its name may resolve
		// elsewhere by now (the dial is checked too).
		if err := env.Hosts.ValidateHost(u.Hostname()); err != nil {
			return nil, client.HostRefused("token endpoint: ", err)
		}
	}
	var tlsCfg *tls.Config
	if connTLS != nil && u.Scheme == "https" {
		// the connection's trust (ca, validateCertificates) also applies to its token endpoint
		tlsCfg = connTLS.Clone()
		tlsCfg.ServerName = u.Hostname()
		tlsCfg.Certificates = nil
	}
	ts.http = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil, TLSClientConfig: tlsCfg,
		DialContext: (&net.Dialer{Timeout: 10 * time.Second, Control: env.DialControl(u.Hostname())}).DialContext}}
	return ts, nil
}

// token returns a valid token, fetching one when there is none, it expired,
// or fresh is set.
func (ts *tokenSource) token(ctx context.Context, fresh bool) (string, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if !fresh && ts.tok != "" && time.Now().Before(ts.expires) {
		return ts.tok, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ts.endpoint, strings.NewReader(ts.form.Encode()))
	if err != nil {
		return "", fmt.Errorf("%w: token request", client.ErrConfig)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := ts.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the url.Error text repeats the URL; the form body is never in it
		}
		var ce *tls.CertificateVerificationError
		var ua x509.UnknownAuthorityError
		if errors.As(err, &ce) || errors.As(err, &ua) {
			return "", fmt.Errorf("token endpoint TLS: %v", err)
		}
		return "", fmt.Errorf("%w: token endpoint %s: %v", client.ErrUnreachable, redact(ts.endpoint), err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return "", fmt.Errorf("%w: token endpoint refused the credentials (HTTP %d)", client.ErrUnauthorized, resp.StatusCode)
	case resp.StatusCode >= 300:
		return "", fmt.Errorf("token endpoint answered HTTP %d", resp.StatusCode)
	}
	var body struct {
		AccessToken string          `json:"access_token"`
		ExpiresIn   json.RawMessage `json:"expires_in"`
	}
	if err := json.Unmarshal(raw, &body); err != nil || body.AccessToken == "" {
		return "", errors.New("token endpoint answered without an access_token")
	}
	now := time.Now()
	exp, ok := jwtExpiry(body.AccessToken)
	if !ok {
		secs, err := strconv.ParseInt(strings.Trim(string(body.ExpiresIn), `"`), 10, 64)
		if err != nil || secs <= 0 {
			secs = 60 // no expiry given: refresh soon
		}
		exp = now.Add(time.Duration(secs) * time.Second)
	}
	life := exp.Sub(now)
	if life <= 0 {
		return "", errors.New("token endpoint answered with an expired access_token")
	}
	ts.tok = body.AccessToken
	ts.expires = exp.Add(-min(ts.skew, life/2))
	return ts.tok, nil
}

// jwtExpiry is the "exp" claim of a JSON web token, which Ditto's token
// cache expires tokens by; ok false when tok is not a JWT with one.
func jwtExpiry(tok string) (time.Time, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp *json.Number `json:"exp"`
	}
	if json.Unmarshal(raw, &claims) != nil || claims.Exp == nil {
		return time.Time{}, false
	}
	f, err := claims.Exp.Float64()
	if err != nil || f <= 0 {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}
