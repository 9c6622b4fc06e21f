package sshtunnel

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"syscall"

	"golang.org/x/crypto/ssh"

	"github.com/dittoconn/dittoconn/internal/client"
)

// The stages Ditto's SshTunnelActor names when its tunnel closes; they
// begin the error texts.
const (
	stageConnect   = "Failed to connect to ssh server"
	stageAuth      = "Failed to authenticate at SSH server."
	stageChannel   = "Opening SSH channel failed with exception"
	stageClosed    = "Session closed by remote"
	stageKeepAlive = "SSH Tunnel failed"
)

// Error is a tunnel failure, described as Ditto describes it: the stage
// that failed, the kind of error (the exception Ditto's SSH library
// raises in that case) and its message. It wraps client.ErrConfig (Ditto
// reports a tunnel failure as user related: the client is misconfigured
// until the tunnel works), the client sentinel that matches
// (ErrUnreachable, ErrUnauthorized or ErrTimeout) and the Go error.
type Error struct {
	Stage string // e.g. "Failed to connect to ssh server"
	Kind  string // e.g. "ConnectException"; "" when there is no cause
	Msg   string // e.g. "Connection refused"
	// userIndicated: Ditto's user-indicated-errors match the cause, so the
	// tunnel's own status is misconfigured rather than failed.
	userIndicated bool
	sentinel      error
	cause         error
}

// Error is Ditto's failure description without its time stamp:
// "<stage> - cause <Kind>: <message>."
func (e *Error) Error() string {
	if e.Kind == "" {
		return withDot(e.Stage)
	}
	return withDot(strings.TrimSuffix(e.Stage, ".") + " - cause <" + e.Kind + ">: " + e.Msg)
}

// Unwrap lets errors.Is find client.ErrConfig, the sentinel and the cause.
func (e *Error) Unwrap() []error {
	out := []error{client.ErrConfig}
	if e.sentinel != nil {
		out = append(out, e.sentinel)
	}
	if e.cause != nil {
		out = append(out, e.cause)
	}
	return out
}

// Description is the description of Ditto's connection.failed answer to
// an open or test that failed in the tunnel: the root cause's message.
func (e *Error) Description() string {
	if e.Kind == "" {
		return "Cause: " + e.Stage
	}
	return "Cause: " + e.Msg
}

// Status is the status of the tunnel's own entry after e: closed when the
// session ended without an error (Ditto keeps no error then),
// misconfigured when Ditto's user-indicated errors match the cause, else
// failed.
func (e *Error) Status() client.Status {
	if e.Kind == "" {
		return client.StatusClosed
	}
	if e.userIndicated {
		return client.StatusMisconfigured
	}
	return client.StatusFailed
}

// StatusDetails are the details of the tunnel's own entry after e.
func (e *Error) StatusDetails() string {
	if e.Kind == "" {
		return DetailsClosed
	}
	return withDot("SSH tunnel failed - cause <" + e.Kind + ">: " + e.Msg)
}

func withDot(s string) string {
	if strings.HasSuffix(s, ".") {
		return s
	}
	return s + "."
}

// dialError classifies a failure to reach the SSH server.
func dialError(err error) *Error {
	e := &Error{Stage: stageConnect, Kind: "ConnectException", sentinel: client.ErrUnreachable, cause: err}
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		e.Msg, e.userIndicated = "Connection refused", true
	case errors.As(err, &dnsErr):
		// Java throws UnresolvedAddressException, a user-indicated error
		e.Kind, e.Msg, e.userIndicated = "UnresolvedAddressException", dnsErr.Error(), true
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		e.Msg, e.sentinel = "Connection timed out", client.ErrTimeout
	default:
		e.Msg = rootMessage(err)
	}
	return e
}

// handshakeError classifies a failure of the SSH handshake: key exchange,
// host key check or user authentication.
func handshakeError(err error) *Error {
	e := &Error{Stage: stageAuth, Kind: "SshException", sentinel: client.ErrUnauthorized, cause: err}
	switch {
	case errors.Is(err, errHostKey):
		e.Msg = "Server key did not validate"
	case strings.Contains(err.Error(), "unable to authenticate"), errors.Is(err, errKeyMismatch):
		// the message of Ditto's SSH library; a user-indicated error
		e.Msg, e.userIndicated = "No more authentication methods available", true
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		e.Msg, e.sentinel = "SSH handshake timed out", client.ErrTimeout
	default:
		e.Msg, e.sentinel = rootMessage(err), client.ErrUnreachable
	}
	return e
}

// channelError classifies a refused port forward (the SSH server could
// not reach the broker).
func channelError(err error) *Error {
	e := &Error{Stage: stageChannel, Kind: "SshChannelOpenException", sentinel: client.ErrUnreachable, cause: err}
	var oce *ssh.OpenChannelError
	if errors.As(err, &oce) {
		e.Msg = oce.Message
		if strings.Contains(oce.Message, "Connection refused") {
			e.userIndicated = true
		}
	} else {
		e.Msg = rootMessage(err)
	}
	if e.Msg == "" {
		e.Msg = "channel open failed"
	}
	return e
}

// rootMessage is the innermost error's text, as Ditto shows the root
// cause's message.
func rootMessage(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}
