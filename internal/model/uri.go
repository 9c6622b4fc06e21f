package model

import (
	"net"
	"strconv"
	"strings"
)

// connURI is a connection URI parsed the way Ditto's ConnectionUri does it:
// java.net.URI + parseServerAuthority(), explicit port > 0, no query.
type connURI struct {
	Scheme   string
	UserInfo string // raw user-info, "" when absent
	HasUser  bool
	Host     string
	Port     int
	Path     string
	ASCII    string // uri.toASCIIString()
}

// Username/password split at the first ':' (Ditto ignores user-info without ':').
func (u connURI) credentials() (user, pass string, ok bool) {
	i := strings.IndexByte(u.UserInfo, ':')
	if !u.HasUser || i < 0 {
		return "", "", false
	}
	return u.UserInfo[:i], u.UserInfo[i+1:], true
}

func isAlpha(c byte) bool      { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isAlnum(c byte) bool      { return isAlpha(c) || isDigit(c) }
func isHex(c byte) bool        { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }
func isMark(c byte) bool       { return strings.IndexByte("-_.!~*'()", c) >= 0 }
func isUnreserved(c byte) bool { return isAlnum(c) || isMark(c) }

// scanChars checks s against java.net.URI's character classes: unreserved,
// the given punctuation, %XX escapes and "other" (non-ASCII) characters.
func scanChars(s, punct string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 0x80:
			// "other" category: any non-ASCII that is not a control or space char.
			// Go strings are bytes; treat all non-ASCII bytes as acceptable.
		case isUnreserved(c) || strings.IndexByte(punct, c) >= 0:
		case c == '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
			i += 2
		default:
			return false
		}
	}
	return true
}

// parseConnURI returns ok=false where Ditto throws ConnectionUriInvalidException.
func parseConnURI(s string) (connURI, bool) {
	var u connURI
	i := strings.IndexByte(s, ':')
	if i <= 0 {
		return u, false // no scheme: a relative URI has no authority, so no port
	}
	u.Scheme = s[:i]
	if !isAlpha(u.Scheme[0]) {
		return u, false
	}
	for j := 1; j < len(u.Scheme); j++ {
		if c := u.Scheme[j]; !isAlnum(c) && c != '+' && c != '-' && c != '.' {
			return u, false
		}
	}
	rest := s[i+1:]
	if !strings.HasPrefix(rest, "//") {
		return u, false // opaque URI: no port
	}
	rest = rest[2:]
	if k := strings.IndexByte(rest, '#'); k >= 0 {
		if !scanChars(rest[k+1:], ";/?:@&=+$,[]") {
			return u, false
		}
		rest = rest[:k]
	}
	if strings.IndexByte(rest, '?') >= 0 {
		return u, false // a query component is not allowed
	}
	end := strings.IndexByte(rest, '/')
	if end < 0 {
		end = len(rest)
	}
	auth, path := rest[:end], rest[end:]
	if !scanChars(path, ";/:@&=+$,") {
		return u, false
	}
	u.Path = path
	if at := strings.LastIndexByte(auth, '@'); at >= 0 {
		u.UserInfo, u.HasUser = auth[:at], true
		if !scanChars(u.UserInfo, ";:&=+$,") {
			return u, false
		}
		auth = auth[at+1:]
	}
	hostPort := auth
	if strings.HasPrefix(hostPort, "[") {
		k := strings.IndexByte(hostPort, ']')
		if k < 0 {
			return u, false
		}
		if net.ParseIP(hostPort[1:k]) == nil || strings.IndexByte(hostPort[1:k], ':') < 0 {
			return u, false
		}
		u.Host = hostPort[:k+1]
		hostPort = hostPort[k+1:]
	} else {
		k := strings.IndexByte(hostPort, ':')
		if k < 0 {
			k = len(hostPort)
		}
		if !validServerHost(hostPort[:k]) {
			return u, false
		}
		u.Host = hostPort[:k]
		hostPort = hostPort[k:]
	}
	if !strings.HasPrefix(hostPort, ":") || len(hostPort) == 1 {
		return u, false // the port must be explicit
	}
	for j := 1; j < len(hostPort); j++ {
		if !isDigit(hostPort[j]) {
			return u, false
		}
	}
	p, err := strconv.ParseInt(hostPort[1:], 10, 32)
	if err != nil || p <= 0 {
		return u, false
	}
	u.Port = int(p)
	u.ASCII = toASCII(s)
	return u, true
}

// validServerHost follows java.net.URI.Parser.parseHostname / parseIPv4Address.
func validServerHost(h string) bool {
	if h == "" {
		return false
	}
	labels := strings.Split(h, ".")
	if labels[len(labels)-1] == "" && len(labels) > 1 {
		labels = labels[:len(labels)-1] // a trailing dot is allowed
	}
	allNum := true
	for _, l := range labels {
		if l == "" || !isAlnum(l[0]) || !isAlnum(l[len(l)-1]) {
			return false
		}
		for j := 0; j < len(l); j++ {
			if !isAlnum(l[j]) && l[j] != '-' {
				return false
			}
			if !isDigit(l[j]) {
				allNum = false
			}
		}
	}
	if allNum && len(labels) > 1 {
		// looks numeric: must be a dotted-quad IPv4 address
		return len(labels) == 4 && net.ParseIP(h) != nil
	}
	// the rightmost label of a qualified name must start with a letter
	return len(labels) == 1 || isAlpha(labels[len(labels)-1][0])
}

// toASCII percent-encodes non-ASCII bytes (UTF-8) as URI.toASCIIString does.
func toASCII(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 {
			b.WriteByte('%')
			b.WriteByte("0123456789ABCDEF"[c>>4])
			b.WriteByte("0123456789ABCDEF"[c&0xf])
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}
