// Package sshtunnel connects a connection's clients through an SSH tunnel
// (the connection's sshTunnel), as Ditto's SshTunnelActor does: a local
// port forward (RFC 4254 section 7.2) over one SSH session per client, the
// connection URI's host and port replaced by the forward's local end, the
// server's host key checked against knownHosts fingerprints when
// validateHost is set, password or public-key authentication.
//
// Wrap (or Specs) puts a tunnelled Client around every protocol client, so
// the protocols know nothing of tunnels: a tunnelled client opens its
// session in Connect, adds the tunnel's status entry (type "ssh", shown in
// sshTunnelStatus) and reports ConnectionLost when the session ends, after
// which the grain closes it and reconnects through a new tunnel. Failures
// are *Error values worded as Ditto's (stage, cause kind, message); they
// wrap client.ErrConfig, since Ditto reports tunnel failures as user
// related (misconfigured).
//
// Concurrency costs: per tunnelled client one SSH connection (x/crypto's
// reader and keep-alive goroutines, one more watching it) and two copying
// goroutines per forwarded connection; nothing is shared between clients.
package sshtunnel
