package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Exit codes of the client subcommands.
const (
	exitOK          = 0
	exitServerError = 1 // the server answered with an error
	exitUsage       = 2 // bad usage, unreadable input, or no usable answer
)

// CLI defaults. The password default is the server's (Ditto's) default.
const (
	defaultURL      = "http://127.0.0.1:8080"
	defaultUser     = "devops"
	defaultPassword = "foobar"
	defaultTimeout  = 30 * time.Second
)

// cliCommands are the first arguments that select the HTTP client instead
// of the server.
var cliCommands = map[string]func(*cli, []string) error{
	"connections": (*cli).connections,
	"migration":   (*cli).migration,
}

// isCLICommand reports whether args[0] names a client subcommand.
func isCLICommand(name string) bool { _, ok := cliCommands[name]; return ok }

// cli is one client invocation.
type cli struct {
	ctx    context.Context
	getenv func(string) string
	out    io.Writer
	errOut io.Writer

	// set by the common flags
	rawURL   string
	base     *url.URL
	user     string
	password string
	output   string
	timeout  time.Duration
	hc       *http.Client
	// isTTY: stdout is a terminal (the progress bar redraws in place).
	isTTY bool
}

// usageError is bad usage: exit 2 with the message.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// transportError is a failure to get an answer: exit 2.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }

// serverError is an error the server answered: exit 1.
type serverError struct {
	status int
	body   []byte
	// code, message, description of a Ditto error JSON, when the body is one.
	code, message, description string
}

func (e *serverError) Error() string {
	if e.code != "" {
		s := fmt.Sprintf("HTTP %d %s: %s", e.status, e.code, e.message)
		if e.description != "" {
			s += "\n  " + e.description
		}
		return s
	}
	text := strings.TrimSpace(string(e.body))
	if text == "" {
		return fmt.Sprintf("HTTP %d", e.status)
	}
	return fmt.Sprintf("HTTP %d: %s", e.status, sanitize(text))
}

// newServerError reads a Ditto error JSON from body when it is one.
func newServerError(status int, body []byte) *serverError {
	se := &serverError{status: status, body: body}
	var e struct {
		Status      int    `json:"status"`
		Code        string `json:"error"`
		Message     string `json:"message"`
		Description string `json:"description"`
	}
	if json.Unmarshal(body, &e) == nil && e.Code != "" {
		se.code, se.message, se.description = e.Code, sanitize(e.Message), sanitize(e.Description)
		if e.Status != 0 {
			se.status = e.Status
		}
	}
	return se
}

// runCLI runs a client subcommand (args[0] is "connections" or "migration")
// and returns the exit code.
func runCLI(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	c := &cli{ctx: ctx, getenv: getenv, out: stdout, errOut: stderr}
	if f, ok := stdout.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			c.isTTY = true
		}
	}
	err := cliCommands[args[0]](c, args[1:])
	return c.finish(err)
}

// finish prints err and maps it to an exit code.
func (c *cli) finish(err error) int {
	if err == nil {
		return exitOK
	}
	var se *serverError
	var ue *usageError
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &se):
		if c.output == "json" {
			body := bytes.TrimSpace(se.body)
			if !json.Valid(body) || len(body) == 0 {
				body, _ = json.Marshal(map[string]any{"status": se.status, "error": "http", "message": sanitize(string(body))})
			}
			fmt.Fprintf(c.out, "%s\n", body)
		}
		fmt.Fprintln(c.errOut, "error:", se.Error())
		return exitServerError
	case errors.As(err, &ue):
		fmt.Fprintln(c.errOut, "usage error:", ue.msg)
		return exitUsage
	default:
		fmt.Fprintln(c.errOut, "error:", err)
		return exitUsage
	}
}

// flags is a FlagSet with the common client flags registered.
func (c *cli) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("dittoconn "+name, flag.ContinueOnError)
	fs.SetOutput(c.errOut)
	// URL and password defaults are resolved after parsing so that the usage
	// text, which prints defaults, never shows a secret.
	fs.StringVar(&c.rawURL, "url", "", "server URL (default $DITTOCONN_URL, else "+defaultURL+")")
	fs.StringVar(&c.user, "user", defaultUser, "devops user")
	fs.StringVar(&c.password, "password", "", "devops password (default $DEVOPS_PASSWORD, else Ditto's default; prefer the variable: flags show in process lists)")
	fs.StringVar(&c.output, "o", "text", "output: text or json")
	fs.StringVar(&c.output, "output", "text", "output: text or json")
	fs.DurationVar(&c.timeout, "timeout", defaultTimeout, "deadline of each request to the server")
	return fs
}

// parse parses flags anywhere among the arguments ("get my-id -o json")
// and checks the common ones; it returns the positional arguments.
func (c *cli) parse(fs *flag.FlagSet, args []string, minPos, maxPos int, what string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usagef("%v", err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	if len(pos) < minPos || len(pos) > maxPos {
		return nil, usagef("%s", what)
	}
	if c.output != "text" && c.output != "json" {
		return nil, usagef("-o must be text or json, not %q", c.output)
	}
	if c.timeout <= 0 {
		return nil, usagef("--timeout must be positive")
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["url"] {
		c.rawURL = c.getenv("DITTOCONN_URL")
		if c.rawURL == "" {
			c.rawURL = defaultURL
		}
	}
	if !set["password"] {
		c.password = c.getenv("DEVOPS_PASSWORD")
	}
	u, err := url.Parse(c.rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("--url must be an http(s) URL such as %s", defaultURL)
	}
	if u.User != nil {
		// Credentials in the URL are used, and then kept out of every message.
		if p, ok := u.User.Password(); ok && c.password == "" {
			c.password = p
		}
		if name := u.User.Username(); name != "" && !set["user"] {
			c.user = name
		}
		u.User = nil
	}
	if c.password == "" {
		c.password = defaultPassword
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	c.base = u
	c.hc = &http.Client{Timeout: c.timeout + 5*time.Second} // backstop; each request has its own deadline
	return pos, nil
}

// response is one HTTP answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// maxAnswer bounds what the client reads from the server.
const maxAnswer = 64 << 20

// do sends one request with the credentials and the deadline. Transport
// failures are transportErrors; HTTP statuses are left to the caller.
func (c *cli) do(method, path string, query url.Values, body []byte, ctype string, header map[string]string) (*response, error) {
	ctx, cancel := context.WithTimeout(c.ctx, c.timeout)
	defer cancel()
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, usagef("bad request: %v", err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Accept", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	req.SetBasicAuth(c.user, c.password)
	resp, err := c.hc.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			return nil, &transportError{fmt.Errorf("no answer from %s within %v", c.base.Redacted(), c.timeout)}
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the URL
		}
		return nil, &transportError{fmt.Errorf("cannot reach %s: %v", c.base.Redacted(), err)}
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, &transportError{fmt.Errorf("reading the answer of %s: %v", c.base.Redacted(), err)}
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: out}, nil
}

// expect returns a serverError unless the answer has one of the statuses.
func expect(r *response, statuses ...int) error {
	for _, s := range statuses {
		if r.status == s {
			return nil
		}
	}
	return newServerError(r.status, r.body)
}

// printJSON writes raw JSON as it came (json output) followed by a newline.
func (c *cli) printJSON(raw []byte) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return
	}
	fmt.Fprintf(c.out, "%s\n", raw)
}

// printIndented writes JSON indented for people.
func (c *cli) printIndented(raw []byte) {
	var b bytes.Buffer
	if json.Indent(&b, bytes.TrimSpace(raw), "", "  ") != nil {
		c.printJSON(raw)
		return
	}
	fmt.Fprintf(c.out, "%s\n", b.Bytes())
}

// sanitize drops control characters (terminal escapes) from server text
// before it reaches a terminal.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' {
			return ' '
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return -1
		}
		return r
	}, s)
}

// readJSONFile reads a JSON object from path ("-" is standard input).
func readJSONFile(path string) ([]byte, map[string]json.RawMessage, error) {
	if path == "" {
		return nil, nil, usagef("-f FILE is required")
	}
	var raw []byte
	var err error
	if path == "-" {
		raw, err = io.ReadAll(io.LimitReader(os.Stdin, maxAnswer))
	} else {
		raw, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, nil, usagef("reading %s: %v", path, err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return nil, nil, usagef("%s does not hold a JSON object", path)
	}
	return bytes.TrimSpace(raw), fields, nil
}
