package connection

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/sshtunnel"
	pb "github.com/dittoconn/dittoconn/proto"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// test answers testConnection for the validated candidate c: it connects a
// real client once and disconnects it, in a goroutine that answers the
// sender (nil returned); types without a live client only check that the
// endpoint accepts a TCP connection (a channel through the SSH tunnel when
// the connection has one). Nothing is persisted. Both end a little
// before the caller's deadline, so that it gets Ditto's timeout failure and
// not a timeout of its own, and live tests wait for one of the Runners'
// test slots within that time.
func (s *supervisor) test(req request, c *model.Connection, seq int64) *pb.Reply {
	if factory, ok := s.cfg.Clients.Factory(c.ConnectionType); ok {
		s.testLive(req, c, factory, seq)
		return nil
	}
	if addr := s.cfg.Clients.DialAddress(c); addr != "" && sshtunnel.Enabled(c) {
		ctx, cancel := context.WithTimeout(context.Background(), req.cmd.AnswerWithin(s.cfg.DialTimeout))
		defer cancel()
		var control func(network, address string, c syscall.RawConn) error
		if u, err := url.Parse(c.SSHTunnel.URI); err == nil {
			control = s.cfg.Validation.DialControl(u.Hostname())
		}
		if err := sshtunnel.Check(ctx, c.SSHTunnel, addr, control); err != nil {
			return errorReply(s.connectError(s.id, c, err), seq)
		}
	} else if addr != "" {
		host, _, _ := net.SplitHostPort(addr)
		d := net.Dialer{Timeout: req.cmd.AnswerWithin(s.cfg.DialTimeout), Control: s.cfg.Validation.DialControl(host)}
		conn, err := d.Dial("tcp", addr)
		if err != nil {
			return errorReply(ditto.ConnectionFailed(s.id, fmt.Sprintf(
				"Could not establish a connection on '%s'. Make sure the endpoint is reachable and that no firewall prevents the connection.", addr)), seq)
		}
		_ = conn.Close()
	}
	return testSucceeded(req.cmd, s.id, seq)
}

func testSucceeded(cmd *pb.Command, id string, seq int64) *pb.Reply {
	return respond(http.StatusOK, testAnswer(cmd.Type, http.StatusOK, id, "Success(successfully connected + initialized mapper)"), seq)
}

func (s *supervisor) testLive(req request, c *model.Connection, factory client.Factory, seq int64) {
	timeout := req.cmd.AnswerWithin(s.cfg.TestTimeout)
	root, id, log, runners := s.root, s.id, s.log, s.cfg.Runners
	c, tlsCfg, tlsErr := s.cfg.Clients.Prepare(c) // hono: the Kafka connection Ditto makes of it
	env := client.Env{Connection: c, Instance: s.cfg.Instance, Logger: log, TLS: tlsCfg, Events: func(client.Event) {}}
	noAnswerWanted := !req.cmd.ResponseRequired()
	testSeconds := int(s.cfg.TestTimeout / time.Second)
	go func() {
		tctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		err := tlsErr
		if err == nil {
			err = runners.test(tctx, func() error { return runTest(tctx, factory, env) })
		}
		var r *pb.Reply
		switch {
		case err == nil:
			r = testSucceeded(req.cmd, id, seq)
		case tctx.Err() != nil && !errors.Is(err, client.ErrUnauthorized) && !errors.Is(err, client.ErrUnreachable):
			r = errorReply(ditto.ConnectionFailed(id, fmt.Sprintf("Failed to open requested connection within <%d> seconds!", testSeconds)), seq)
		default:
			r = errorReply(s.connectError(id, c, err), seq)
		}
		log.Debug().Err(err).Msg("test finished")
		if noAnswerWanted {
			r = noAnswer()
		}
		if req.sender != nil {
			root.Send(req.sender, r)
		}
	}()
}

func runTest(ctx context.Context, factory client.Factory, env client.Env) error {
	cl, err := factory(env)
	if err != nil {
		return err
	}
	if t, ok := cl.(client.Tester); ok {
		return t.Test(ctx)
	}
	err = cl.Connect(ctx)
	cctx, cancel := context.WithTimeout(context.Background(), disconnectTimeout)
	defer cancel()
	_ = cl.Close(cctx)
	return err
}
