// Package hmaccommon is what the protocols that take HMAC credentials
// (credentials type "hmac": HTTP push and AMQP 1.0) share: reading an
// algorithm's parameters as Ditto does and Azure's shared access
// signatures (az-sasl), which both protocols support. Everything here is
// pure computation, safe for concurrent use.
package hmaccommon

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dittoconn/dittoconn/internal/model"
)

// Params reads the parameters of one algorithm, keeping the first problem
// in Err.
type Params struct {
	Alg string
	M   map[string]any
	Err error
}

// NewParams reads cr's algorithm and parameters.
func NewParams(cr *model.Credentials) *Params {
	p := &Params{Alg: cr.Algorithm, M: map[string]any{}}
	if len(cr.Parameters) > 0 {
		if err := json.Unmarshal(cr.Parameters, &p.M); err != nil {
			p.Err = fmt.Errorf("the parameters of the HMAC credentials are not a JSON object")
		}
	}
	return p
}

// Fail records a problem unless one was recorded before.
func (p *Params) Fail(format string, args ...any) {
	if p.Err == nil {
		p.Err = fmt.Errorf(format, args...)
	}
}

// Str is the string parameter name; "" when absent (a problem when
// required).
func (p *Params) Str(name string, required bool) string {
	v, ok := p.M[name]
	if !ok || v == nil {
		if required {
			p.Fail("the HMAC credentials of algorithm %s lack the parameter '%s'", p.Alg, name)
		}
		return ""
	}
	s, ok := v.(string)
	if !ok {
		p.Fail("the HMAC credentials parameter '%s' must be a string", name)
	}
	return s
}

// Base64Key is the required parameter name, base64-decoded; what prefixes
// the problem when it is not base64.
func (p *Params) Base64Key(name, what string) []byte {
	s := p.Str(name, true)
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		p.Fail("%s The shared key is not in Base64 scheme.", what)
	}
	return key
}

// HMACSHA256 is the HMAC-SHA256 of data under key.
func HMACSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

// EncodeAllButUnreserved percent-encodes every byte of s's UTF-8 but the
// unreserved characters of RFC 3986 (upper-case hex), as Ditto's
// UriEncoding.encodeAllButUnreserved does; keep lists more bytes to leave.
func EncodeAllButUnreserved(s string, keep ...byte) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' ||
			slices.Contains(keep, c) {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// AzSASL makes Azure shared access signatures (IoT Hub, Service Bus):
// algorithm az-sasl with parameters sharedKeyName, sharedKey (base64),
// endpoint and ttl (optional, Ditto's duration syntax, default 7 days).
type AzSASL struct {
	keyName, endpoint string
	key               []byte
	ttl               time.Duration
}

// DefaultSASTTL is Ditto's default lifetime of a signature.
const DefaultSASTTL = 7 * 24 * time.Hour

// NewAzSASL reads the az-sasl parameters of p (problems in p.Err).
func NewAzSASL(p *Params) *AzSASL {
	s := &AzSASL{keyName: p.Str("sharedKeyName", true), endpoint: p.Str("endpoint", true), ttl: DefaultSASTTL}
	s.key = p.Base64Key("sharedKey", "Failed to initiate Azure SASL signing algorithm.")
	if v := p.Str("ttl", false); v != "" {
		d, ok := DittoDuration(v)
		if !ok {
			p.Fail("the HMAC credentials parameter 'ttl' is not a duration: %s", v)
		}
		s.ttl = d
	}
	return s
}

// Token is the signature valid from now for the ttl:
// "sr=<resource>&sig=<signature>&se=<expiry>&skn=<key name>".
func (s *AzSASL) Token(now time.Time) string {
	expiry := now.Add(s.ttl).Unix()
	sr := EncodeAllButUnreserved(s.endpoint)
	sig := EncodeAllButUnreserved(base64.StdEncoding.EncodeToString(HMACSHA256(s.key, sr+"\n"+strconv.FormatInt(expiry, 10))))
	return fmt.Sprintf("sr=%s&sig=%s&se=%d&skn=%s", sr, sig, expiry, s.keyName)
}

// AMQPCredentials are the SASL PLAIN username and password of a signature
// made at now, as Ditto's AMQP 1.0 client logs in to Azure:
// "<sharedKeyName>@sas.root.<endpoint without .azure-devices.net>" and
// "SharedAccessSignature <token>".
func (s *AzSASL) AMQPCredentials(now time.Time) (user, pass string) {
	return s.keyName + "@sas.root." + strings.TrimSuffix(s.endpoint, ".azure-devices.net"),
		"SharedAccessSignature " + s.Token(now)
}

var dittoDurationPattern = regexp.MustCompile(`^([+-]?\d+)(ms|s|m|h|d|w|mo|y)?$`)

// DittoDuration parses Ditto's duration strings (DittoDuration): an
// integer with a unit, seconds without; months and years count 30 and 365
// days. Negative durations are refused.
func DittoDuration(s string) (time.Duration, bool) {
	m := dittoDurationPattern.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	unit := map[string]time.Duration{"": time.Second, "s": time.Second, "ms": time.Millisecond, "m": time.Minute,
		"h": time.Hour, "d": 24 * time.Hour, "w": 7 * 24 * time.Hour, "mo": 30 * 24 * time.Hour, "y": 365 * 24 * time.Hour}[m[2]]
	if n > math.MaxInt64/int64(unit) {
		return 0, false // beyond what a duration holds
	}
	return time.Duration(n) * unit, true
}
