// Package sshdtest starts a real OpenSSH server (Debian's openssh-server,
// /usr/sbin/sshd) for tests of SSH tunnels: its own process on a free
// loopback port, with a temporary configuration, host key and authorized
// key, and a dedicated user that may forward ports and nothing else.
//
// Decisions (sshd needs them to authenticate a password):
//   - sshd checks passwords against /etc/shadow (UsePAM no), so password
//     tests need a system user with a known password. As root, Start
//     creates the user "dittoconn-ssh" when missing (no home, shell
//     /usr/sbin/nologin: sshd lets it forward ports but run nothing) and
//     gives it a random password kept in a root-only file under /run, so
//     that concurrent test processes share it. Without root, Start skips.
//   - The client key pair is RSA in PKCS #8 (private) and X.509 (public)
//     PEM, made by ssh-keygen as Ditto's documentation describes; the
//     authorized keys file lives in the temporary directory (StrictModes
//     off, since /tmp is world-writable).
//   - Fingerprints come from ssh-keygen -l, not from the code under test.
//
// Start skips the test when sshd cannot run, and fails it instead when
// DITTOCONN_REQUIRE_BROKERS=1 (CI). Nothing is started globally: each
// server is stopped with its test.
package sshdtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/test/poll"
)

// User is the account the tunnels log in as.
const User = "dittoconn-ssh"

// Binary is where Debian installs sshd.
const Binary = "/usr/sbin/sshd"

const (
	passwordFile = "/run/dittoconn-sshdtest.password"
	lockFile     = "/run/dittoconn-sshdtest.lock"
)

// Server is one running sshd.
type Server struct {
	// Addr is the server's host:port.
	Addr string
	// MD5 and SHA256 are the host key's fingerprints as ssh-keygen prints
	// them ("MD5:xx:…", "SHA256:…").
	MD5, SHA256 string
	// Password is User's password.
	Password string
	// PublicKeyPEM (X.509) and PrivateKeyPEM (PKCS #8) are an authorized
	// key pair of User.
	PublicKeyPEM, PrivateKeyPEM string

	cmd    *exec.Cmd
	stderr *poll.Buffer
	mu     sync.Mutex
	done   chan struct{}
}

// Start starts an sshd for t, stopped with t.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := os.Stat(Binary); err != nil {
		unavailable(t, "sshd is not installed (Debian package openssh-server): "+err.Error())
	}
	if os.Geteuid() != 0 {
		unavailable(t, "sshd tests run as root: password authentication needs a system user with a known password")
	}
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		unavailable(t, "ssh-keygen is not installed: "+err.Error())
	}
	password, err := ensureUser()
	if err != nil {
		unavailable(t, "cannot prepare the sshd test user: "+err.Error())
	}
	dir := t.TempDir()
	s := &Server{Password: password}
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("ssh-keygen", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("ssh-keygen %v: %v: %s", args, err, out)
		}
		return string(out)
	}
	hostKey := filepath.Join(dir, "host_key")
	run("-q", "-t", "ed25519", "-N", "", "-C", "dittoconn-test-host", "-f", hostKey)
	s.MD5 = fingerprintOf(t, run("-l", "-E", "md5", "-f", hostKey+".pub"))
	s.SHA256 = fingerprintOf(t, run("-l", "-E", "sha256", "-f", hostKey+".pub"))
	clientKey := filepath.Join(dir, "client_key")
	run("-q", "-t", "rsa", "-b", "2048", "-m", "PKCS8", "-N", "", "-C", "dittoconn-test-client", "-f", clientKey)
	priv, err := os.ReadFile(clientKey)
	if err != nil {
		t.Fatal(err)
	}
	s.PrivateKeyPEM = string(priv)
	s.PublicKeyPEM = run("-e", "-m", "PKCS8", "-f", clientKey+".pub")
	// sshd reads the authorized keys as User: let it through the
	// temporary directories (traverse only) and read the file
	authorized := filepath.Join(dir, "authorized_keys")
	if err := copyFile(clientKey+".pub", authorized); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(p, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	s.start(t, dir, hostKey, authorized)
	return s
}

func (s *Server) start(t testing.TB, dir, hostKey, authorized string) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		port := freePort(t)
		cfg := filepath.Join(dir, "sshd_config")
		conf := strings.Join([]string{
			"Port " + port,
			"ListenAddress 127.0.0.1",
			"HostKey " + hostKey,
			"PidFile none",
			"UsePAM no",
			"PasswordAuthentication yes",
			"KbdInteractiveAuthentication no",
			"PubkeyAuthentication yes",
			"AuthorizedKeysFile " + authorized,
			"StrictModes no",
			"AllowUsers " + User,
			"AllowTcpForwarding local",
			"PermitTTY no",
			"X11Forwarding no",
			"AllowAgentForwarding no",
			"PermitTunnel no",
			"ForceCommand /bin/false",
			"MaxStartups 100",
			"LogLevel DEBUG1", // shows each forwarded channel (direct-tcpip) and its target
		}, "\n") + "\n"
		if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		s.stderr = &poll.Buffer{}
		cmd := exec.Command(Binary, "-D", "-e", "-f", cfg)
		cmd.Stderr = s.stderr
		if err := cmd.Start(); err != nil {
			t.Fatalf("start sshd: %v", err)
		}
		s.cmd, s.Addr, s.done = cmd, "127.0.0.1:"+port, make(chan struct{})
		go func() { _ = cmd.Wait(); close(s.done) }()
		if s.waitListening(10 * time.Second) {
			t.Cleanup(func() {
				s.Stop()
				if t.Failed() {
					t.Logf("sshd log:\n%s", s.stderr.String())
				}
			})
			return
		}
		s.Stop()
		if attempt == 3 {
			t.Fatalf("sshd did not listen on %s:\n%s", s.Addr, s.stderr.String())
		}
	}
}

// waitListening polls until sshd accepts connections or exits.
func (s *Server) waitListening(within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return false
		default:
		}
		if c, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond); err == nil {
			_ = c.Close()
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// Stop stops the listening sshd (sessions already open end with their
// connections); later calls do nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// Log is what sshd logged so far.
func (s *Server) Log() string { return s.stderr.String() }

// Tunnel is an enabled sshTunnel to s with credentials of type "plain"
// or "public-key", checking the host key by its SHA256 fingerprint.
func (s *Server) Tunnel(credentials string) *model.SSHTunnel {
	user := User
	cr := model.Credentials{Type: credentials, Username: &user}
	switch credentials {
	case "plain":
		pw := s.Password
		cr.Password = &pw
	case "public-key":
		cr.PublicKey, cr.PrivateKey = s.PublicKeyPEM, s.PrivateKeyPEM
	}
	return &model.SSHTunnel{Enabled: true, URI: "ssh://" + s.Addr, Credentials: cr, ValidateHost: true,
		KnownHosts: []string{s.SHA256}}
}

// unavailable skips t, or fails it under DITTOCONN_REQUIRE_BROKERS=1.
func unavailable(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("DITTOCONN_REQUIRE_BROKERS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// fingerprintOf reads the fingerprint out of ssh-keygen -l's line
// ("256 SHA256:… comment (ED25519)").
func fingerprintOf(t testing.TB, line string) string {
	t.Helper()
	f := strings.Fields(line)
	if len(f) < 2 {
		t.Fatalf("ssh-keygen -l printed %q", line)
	}
	return f[1]
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}

// ensureUser creates User when missing and returns its password, the same
// for every test process of this boot (a lock file serializes them).
func ensureUser() (string, error) {
	lock, err := os.OpenFile(lockFile, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", err
	}
	defer func() { _ = lock.Close() }()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock %s: %w", lockFile, err)
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()
	// sshd's privilege separation directory (Debian's systemd unit makes it)
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := user.Lookup(User); err != nil {
		out, err := exec.CommandContext(ctx, "useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
			"--shell", "/usr/sbin/nologin", "--comment", "dittoconn SSH tunnel tests", User).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("useradd: %v: %s", err, out)
		}
		_ = os.Remove(passwordFile) // a new user has no password yet
	}
	if b, err := os.ReadFile(passwordFile); err == nil && len(b) > 0 {
		return string(b), nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	raw := make([]byte, 18)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	password := hex.EncodeToString(raw)
	cmd := exec.CommandContext(ctx, "chpasswd")
	cmd.Stdin = strings.NewReader(User + ":" + password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("chpasswd: %v: %s", err, out)
	}
	if err := os.WriteFile(passwordFile, []byte(password), 0o600); err != nil {
		return "", err
	}
	return password, nil
}
