package blackbox

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/dittoconn/dittoconn/test/poll"
)

// NeedBroker skips the test when name at addr does not accept connections,
// or fails it when DITTOCONN_REQUIRE_BROKERS=1 (CI).
func NeedBroker(t *testing.T, name, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		_ = c.Close()
		return
	}
	if os.Getenv("DITTOCONN_REQUIRE_BROKERS") == "1" {
		t.Fatalf("%s at %s is unreachable (DITTOCONN_REQUIRE_BROKERS=1): %v", name, addr, err)
	}
	t.Skipf("%s at %s is unreachable, skipping: %v", name, addr, err)
}

// NeedBinary skips (or fails under DITTOCONN_REQUIRE_BROKERS=1) when a
// program the test starts is missing.
func NeedBinary(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("DITTOCONN_REQUIRE_BROKERS") == "1" {
		t.Fatalf("%s not installed (DITTOCONN_REQUIRE_BROKERS=1)", name)
	}
	t.Skipf("%s not installed, skipping", name)
	return ""
}

// FreePort returns a loopback port nobody listens on right now.
func FreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Mosquitto is a broker process of the test's own, on its own port; it may be
// stopped and started again on the same port.
type Mosquitto struct {
	t    *testing.T
	bin  string
	conf string
	Port int
	cmd  *exec.Cmd
}

// StartMosquitto starts a broker with extra config lines (listener, log and
// persistence are set here); users maps user → password (then anonymous is
// off).
func StartMosquitto(t *testing.T, users map[string]string, extra string) *Mosquitto {
	t.Helper()
	bin := NeedBinary(t, "mosquitto")
	dir := t.TempDir()
	m := &Mosquitto{t: t, bin: bin, Port: FreePort(t), conf: filepath.Join(dir, "mosquitto.conf")}
	conf := fmt.Sprintf("user root\nlistener %d 127.0.0.1\npersistence false\nlog_dest file %s\n", m.Port, filepath.Join(dir, "mosquitto.log"))
	if users == nil {
		conf += "allow_anonymous true\n"
	} else {
		pw := filepath.Join(dir, "passwd")
		if err := os.WriteFile(pw, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		for u, p := range users {
			if out, err := exec.Command(NeedBinary(t, "mosquitto_passwd"), "-b", pw, u, p).CombinedOutput(); err != nil {
				t.Fatalf("mosquitto_passwd: %v %s", err, out)
			}
		}
		conf += "allow_anonymous false\npassword_file " + pw + "\n"
	}
	conf += extra
	if err := os.WriteFile(m.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	m.Start()
	t.Cleanup(m.Stop)
	return m
}

// Addr is host:port.
func (m *Mosquitto) Addr() string { return "127.0.0.1:" + strconv.Itoa(m.Port) }

// URI is tcp://host:port.
func (m *Mosquitto) URI() string { return "tcp://" + m.Addr() }

// Start runs the broker and waits until it accepts connections.
func (m *Mosquitto) Start() {
	m.t.Helper()
	m.cmd = exec.Command(m.bin, "-c", m.conf)
	if err := m.cmd.Start(); err != nil {
		m.t.Fatalf("start mosquitto: %v", err)
	}
	poll.Check(m.t, 10*time.Second, func() error {
		c, err := net.DialTimeout("tcp", m.Addr(), time.Second)
		if err != nil {
			return fmt.Errorf("mosquitto on %s did not come up: %w", m.Addr(), err)
		}
		return c.Close()
	})
}

// Stop ends the broker process (only this test's own).
func (m *Mosquitto) Stop() {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	_ = m.cmd.Process.Kill()
	_ = m.cmd.Wait()
	m.cmd = nil
}

// Subscriber is an MQTT client of the test that collects messages of a topic.
type Subscriber struct {
	Msgs       chan paho.Message
	subscribed chan struct{} // a (re)subscription was confirmed
	c          paho.Client
}

// Resubscribed waits until the subscriber is subscribed again after its
// broker came back.
func (s *Subscriber) Resubscribed(t *testing.T) {
	t.Helper()
	select {
	case <-s.subscribed:
	case <-time.After(15 * time.Second):
		t.Fatal("test subscriber did not resubscribe")
	}
}

// Subscribe connects an MQTT client (auto-reconnecting, resubscribing) to
// brokerURI and subscribes it to topic at QoS 1 until the test ends.
func Subscribe(t *testing.T, brokerURI, topic string) *Subscriber {
	t.Helper()
	s := &Subscriber{Msgs: make(chan paho.Message, 100)}
	subscribed := make(chan struct{}, 1)
	s.subscribed = subscribed
	opts := paho.NewClientOptions().AddBroker(brokerURI).SetClientID(fmt.Sprintf("test-sub-%d", time.Now().UnixNano())).
		SetConnectTimeout(5 * time.Second).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(50 * time.Millisecond).SetMaxReconnectInterval(200 * time.Millisecond).
		SetCleanSession(true).SetResumeSubs(true).
		SetOnConnectHandler(func(c paho.Client) {
			tok := c.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) { s.Msgs <- m })
			tok.WaitTimeout(5 * time.Second)
			select {
			case subscribed <- struct{}{}:
			default:
			}
		})
	s.c = paho.NewClient(opts)
	tok := s.c.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("test subscriber connect: %v", tok.Error())
	}
	select {
	case <-subscribed:
	case <-time.After(10 * time.Second):
		t.Fatalf("test subscriber: subscription to %q not confirmed", topic)
	}
	t.Cleanup(func() { s.c.Disconnect(100) })
	return s
}

// Next waits for the next message, failing after within.
func (s *Subscriber) Next(t *testing.T, within time.Duration, what string) paho.Message {
	t.Helper()
	select {
	case m := <-s.Msgs:
		return m
	case <-time.After(within):
		t.Fatalf("%s: no message within %v", what, within)
		return nil
	}
}

// MosquittoOn is an anonymous broker on port, not started yet.
func MosquittoOn(t *testing.T, port int) *Mosquitto {
	t.Helper()
	return &Mosquitto{t: t, bin: NeedBinary(t, "mosquitto"), Port: port, conf: writeMosquittoConf(t, port)}
}

// writeMosquittoConf writes an anonymous broker's config for port.
func writeMosquittoConf(t *testing.T, port int) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "mosquitto.conf")
	conf := fmt.Sprintf("user root\nlistener %d 127.0.0.1\npersistence false\nallow_anonymous true\nlog_dest file %s\n", port, filepath.Join(dir, "mosquitto.log"))
	if err := os.WriteFile(p, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
