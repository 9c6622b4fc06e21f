package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
)

const connectionsUsage = `usage: dittoconn connections COMMAND [flags]

commands:
  list [--ids-only] [--fields F]     list connections (all pages)
  get ID [--fields F]                show one connection
  create -f FILE                     create a connection (FILE "-" is stdin); an id in FILE is kept
  modify -f FILE [ID]                create or replace the connection with FILE's id (or ID)
  delete ID                          delete a connection
  open ID | close ID                 open or close a connection
  test -f FILE                       try a connection without creating it
  status ID                          live status of a connection and its clients
  metrics ID [--reset]               message counters per address, or reset them
  logs ID [--enable | --reset]       connection logs, or enable / reset them

common flags: --url (DITTOCONN_URL), --password (DEVOPS_PASSWORD), --user, -o text|json, --timeout`

const apiPath = "/api/2/connections"

// pageSize is the page the CLI asks for when it lists (the server's maximum).
const pageSize = 200

func (c *cli) connections(args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(c.errOut, connectionsUsage)
		if len(args) == 0 {
			return usagef("a command is required")
		}
		return nil
	}
	cmd, args := args[0], args[1:]
	fs := c.flags("connections " + cmd)
	switch cmd {
	case "list":
		idsOnly := fs.Bool("ids-only", false, "list ids only")
		fields := fs.String("fields", "", "comma-separated fields of each connection")
		if _, err := c.parse(fs, args, 0, 0, "connections list takes no arguments"); err != nil {
			return err
		}
		return c.list(*idsOnly, *fields)
	case "get":
		fields := fs.String("fields", "", "comma-separated fields to show")
		pos, err := c.parse(fs, args, 1, 1, "connections get ID")
		if err != nil {
			return err
		}
		return c.get(pos[0], *fields)
	case "create", "modify", "test":
		file := fs.String("f", "", "connection JSON file (- for stdin)")
		maxPos := 0
		if cmd == "modify" {
			maxPos = 1
		}
		pos, err := c.parse(fs, args, 0, maxPos, "connections "+cmd+" -f FILE")
		if err != nil {
			return err
		}
		raw, fields, err := readJSONFile(*file)
		if err != nil {
			return err
		}
		switch cmd {
		case "create":
			return c.create(raw, fields)
		case "test":
			return c.test(raw)
		}
		id := ""
		if len(pos) == 1 {
			id = pos[0]
		}
		return c.modify(raw, fields, id)
	case "delete", "open", "close", "status":
		pos, err := c.parse(fs, args, 1, 1, "connections "+cmd+" ID")
		if err != nil {
			return err
		}
		switch cmd {
		case "delete":
			return c.deleteConnection(pos[0])
		case "open":
			return c.command(pos[0], "connectivity.commands:openConnection", "opened connection "+pos[0])
		case "close":
			return c.command(pos[0], "connectivity.commands:closeConnection", "closed connection "+pos[0])
		}
		return c.status(pos[0])
	case "metrics":
		reset := fs.Bool("reset", false, "reset the counters")
		pos, err := c.parse(fs, args, 1, 1, "connections metrics ID [--reset]")
		if err != nil {
			return err
		}
		if *reset {
			return c.command(pos[0], "connectivity.commands:resetConnectionMetrics", "reset the metrics of connection "+pos[0])
		}
		return c.metrics(pos[0])
	case "logs":
		enable := fs.Bool("enable", false, "enable logging")
		reset := fs.Bool("reset", false, "clear the logs")
		pos, err := c.parse(fs, args, 1, 1, "connections logs ID [--enable | --reset]")
		if err != nil {
			return err
		}
		switch {
		case *enable && *reset:
			return usagef("--enable and --reset exclude each other")
		case *enable:
			return c.command(pos[0], "connectivity.commands:enableConnectionLogs", "enabled the logs of connection "+pos[0])
		case *reset:
			return c.command(pos[0], "connectivity.commands:resetConnectionLogs", "reset the logs of connection "+pos[0])
		}
		return c.logs(pos[0])
	default:
		fmt.Fprintln(c.errOut, connectionsUsage)
		return usagef("unknown command %q", cmd)
	}
}

// idPath is the API path of one connection (or of its sub-resource).
func idPath(id string, sub ...string) string {
	p := apiPath + "/" + url.PathEscape(id)
	for _, s := range sub {
		p += "/" + s
	}
	return p
}

// list fetches every page (option=size,cursor) so that any number of
// connections can be listed. A server without paging (Ditto) answers an
// array, which is taken as the whole list.
func (c *cli) list(idsOnly bool, fields string) error {
	var items []json.RawMessage
	cursor := ""
	for {
		q := url.Values{}
		if idsOnly {
			q.Set("ids-only", "true")
		}
		if fields != "" {
			q.Set("fields", fields)
		}
		opt := fmt.Sprintf("size(%d)", pageSize)
		if cursor != "" {
			opt += ",cursor(" + cursor + ")"
		}
		q.Set("option", opt)
		r, err := c.do(http.MethodGet, apiPath, q, nil, "", nil)
		if err != nil {
			return err
		}
		if err := expect(r, http.StatusOK); err != nil {
			return err
		}
		var page struct {
			Items  []json.RawMessage `json:"items"`
			Cursor string            `json:"cursor"`
		}
		if body := strings.TrimSpace(string(r.body)); cursor == "" && strings.HasPrefix(body, "[") {
			if err := json.Unmarshal([]byte(body), &items); err != nil {
				return &transportError{fmt.Errorf("the server's list is not JSON: %v", err)}
			}
			break // an unpaged answer
		}
		if err := json.Unmarshal(r.body, &page); err != nil {
			return &transportError{fmt.Errorf("the server's list is not JSON: %v", err)}
		}
		items = append(items, page.Items...)
		if page.Cursor == "" || page.Cursor == cursor {
			break
		}
		cursor = page.Cursor
	}
	if items == nil {
		items = []json.RawMessage{}
	}
	all, _ := json.Marshal(items)
	if c.output == "json" {
		c.printJSON(all)
		return nil
	}
	if idsOnly || strings.TrimSpace(fields) == "id" {
		for _, it := range items {
			var id string
			_ = json.Unmarshal(it, &id)
			fmt.Fprintln(c.out, sanitize(id))
		}
		return nil
	}
	if fields != "" {
		c.printIndented(all)
		return nil
	}
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTYPE\tSTATUS\tSOURCES\tTARGETS\tNAME")
	for _, it := range items {
		var conn struct {
			ID      string `json:"id"`
			Name    string `json:"name"`
			Type    string `json:"connectionType"`
			Status  string `json:"connectionStatus"`
			Sources []any  `json:"sources"`
			Targets []any  `json:"targets"`
		}
		_ = json.Unmarshal(it, &conn)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", sanitize(conn.ID), sanitize(conn.Type), sanitize(conn.Status),
			len(conn.Sources), len(conn.Targets), sanitize(conn.Name))
	}
	return tw.Flush()
}

func (c *cli) get(id, fields string) error {
	q := url.Values{}
	if fields != "" {
		q.Set("fields", fields)
	}
	r, err := c.do(http.MethodGet, idPath(id), q, nil, "", nil)
	if err != nil {
		return err
	}
	if err := expect(r, http.StatusOK); err != nil {
		return err
	}
	if c.output == "json" {
		c.printJSON(r.body)
	} else {
		c.printIndented(r.body)
	}
	return nil
}

// create POSTs a connection without id (the server generates one); with an
// id it PUTs create-only (If-None-Match: *) so that an existing connection
// is never replaced by "create".
func (c *cli) create(raw []byte, fields map[string]json.RawMessage) error {
	var r *response
	var err error
	if idRaw, has := fields["id"]; has {
		var id string
		if json.Unmarshal(idRaw, &id) != nil || id == "" {
			return usagef("the connection's id must be a non-empty string")
		}
		r, err = c.do(http.MethodPut, idPath(id), nil, raw, "application/json", map[string]string{"If-None-Match": "*"})
	} else {
		r, err = c.do(http.MethodPost, apiPath, nil, raw, "application/json", nil)
	}
	if err != nil {
		return err
	}
	if err := expect(r, http.StatusCreated); err != nil {
		return err
	}
	return c.reportWrite(r, "created connection %s")
}

// reportWrite prints the answer of a create: the connection (json) or one line.
func (c *cli) reportWrite(r *response, format string) error {
	if c.output == "json" {
		c.printJSON(r.body)
		return nil
	}
	var conn struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(r.body, &conn)
	fmt.Fprintf(c.out, format+"\n", sanitize(conn.ID))
	return nil
}

func (c *cli) modify(raw []byte, fields map[string]json.RawMessage, id string) error {
	if idRaw, has := fields["id"]; has {
		var fileID string
		if json.Unmarshal(idRaw, &fileID) != nil {
			return usagef("the connection's id must be a string")
		}
		if id == "" {
			id = fileID
		}
	}
	if id == "" {
		return usagef("connections modify needs an id: in FILE or as argument")
	}
	r, err := c.do(http.MethodPut, idPath(id), nil, raw, "application/json", nil)
	if err != nil {
		return err
	}
	if err := expect(r, http.StatusCreated, http.StatusNoContent); err != nil {
		return err
	}
	if r.status == http.StatusCreated {
		return c.reportWrite(r, "created connection %s")
	}
	if c.output == "text" {
		fmt.Fprintf(c.out, "modified connection %s\n", sanitize(id))
	}
	return nil
}

func (c *cli) test(raw []byte) error {
	r, err := c.do(http.MethodPost, apiPath, url.Values{"dry-run": {"true"}}, raw, "application/json", nil)
	if err != nil {
		return err
	}
	if err := expect(r, http.StatusOK); err != nil {
		return err
	}
	if c.output == "text" {
		fmt.Fprintln(c.out, "connection test succeeded")
	}
	return nil
}

func (c *cli) deleteConnection(id string) error {
	r, err := c.do(http.MethodDelete, idPath(id), nil, nil, "", nil)
	if err != nil {
		return err
	}
	if err := expect(r, http.StatusNoContent); err != nil {
		return err
	}
	if c.output == "text" {
		fmt.Fprintf(c.out, "deleted connection %s\n", sanitize(id))
	}
	return nil
}

// command POSTs one command text to …/{id}/command.
func (c *cli) command(id, command, done string) error {
	r, err := c.do(http.MethodPost, idPath(id, "command"), nil, []byte(command), "text/plain", nil)
	if err != nil {
		return err
	}
	if err := expect(r, http.StatusOK); err != nil {
		return err
	}
	if c.output == "text" {
		fmt.Fprintln(c.out, sanitize(done))
	}
	return nil
}

// resourceStatus is one entry of a connection status.
type resourceStatus struct {
	Type           string `json:"type"`
	Client         string `json:"client"`
	Address        string `json:"address"`
	Status         string `json:"status"`
	RecoveryStatus string `json:"recoveryStatus"`
	StatusDetails  string `json:"statusDetails"`
	InStateSince   string `json:"inStateSince"`
}

func (c *cli) status(id string) error {
	r, err := c.do(http.MethodGet, idPath(id, "status"), nil, nil, "", nil)
	if err != nil {
		return err
	}
	if err := expect(r, http.StatusOK); err != nil {
		return err
	}
	if c.output == "json" {
		c.printJSON(r.body)
		return nil
	}
	var st struct {
		ConnectionID     string           `json:"connectionId"`
		ConnectionStatus string           `json:"connectionStatus"`
		LiveStatus       string           `json:"liveStatus"`
		RecoveryStatus   string           `json:"recoveryStatus"`
		ConnectedSince   string           `json:"connectedSince"`
		Clients          []resourceStatus `json:"clientStatus"`
		Sources          []resourceStatus `json:"sourceStatus"`
		Targets          []resourceStatus `json:"targetStatus"`
		SSH              []resourceStatus `json:"sshTunnelStatus"`
	}
	if err := json.Unmarshal(r.body, &st); err != nil {
		return &transportError{fmt.Errorf("the server's status is not JSON: %v", err)}
	}
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "connection\t%s\n", sanitize(st.ConnectionID))
	fmt.Fprintf(tw, "desired status\t%s\n", sanitize(st.ConnectionStatus))
	fmt.Fprintf(tw, "live status\t%s\n", sanitize(st.LiveStatus))
	fmt.Fprintf(tw, "recovery\t%s\n", sanitize(st.RecoveryStatus))
	if st.ConnectedSince != "" {
		fmt.Fprintf(tw, "connected since\t%s\n", sanitize(st.ConnectedSince))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(c.out)
	tw = tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RESOURCE\tCLIENT\tADDRESS\tSTATUS\tSINCE\tDETAILS")
	for _, list := range [][]resourceStatus{st.Clients, st.Sources, st.Targets, st.SSH} {
		for _, e := range list {
			addr := e.Address
			if addr == "" {
				addr = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", sanitize(e.Type), sanitize(e.Client), sanitize(addr),
				sanitize(e.Status), sanitize(e.InStateSince), sanitize(e.StatusDetails))
		}
	}
	return tw.Flush()
}

// measurement is one success or failure counter of a metric.
type measurement struct {
	M1   int64   `json:"PT1M"`
	H1   int64   `json:"PT1H"`
	H24  int64   `json:"PT24H"`
	Last *string `json:"lastMessageAt"`
}

type metric struct {
	Success measurement `json:"success"`
	Failure measurement `json:"failure"`
}

func (m metric) idle() bool {
	return m.Success.H24 == 0 && m.Failure.H24 == 0 && m.Success.Last == nil && m.Failure.Last == nil
}

func (c *cli) metrics(id string) error {
	r, err := c.do(http.MethodGet, idPath(id, "metrics"), nil, nil, "", nil)
	if err != nil {
		return err
	}
	if err := expect(r, http.StatusOK); err != nil {
		return err
	}
	if c.output == "json" {
		c.printJSON(r.body)
		return nil
	}
	var m struct {
		ContainsFailures bool `json:"containsFailures"`
		Connection       struct {
			Inbound  map[string]metric `json:"inbound"`
			Outbound map[string]metric `json:"outbound"`
		} `json:"connectionMetrics"`
		Source struct {
			Addresses map[string]map[string]metric `json:"addressMetrics"`
		} `json:"sourceMetrics"`
		Target struct {
			Addresses map[string]map[string]metric `json:"addressMetrics"`
		} `json:"targetMetrics"`
	}
	if err := json.Unmarshal(r.body, &m); err != nil {
		return &transportError{fmt.Errorf("the server's metrics are not JSON: %v", err)}
	}
	if m.Source.Addresses == nil && m.Target.Addresses == nil && m.Connection.Inbound == nil && m.Connection.Outbound == nil {
		fmt.Fprintln(c.out, "no metrics: no client of this connection is running")
		return nil
	}
	fmt.Fprintf(c.out, "contains failures: %v\n\n", m.ContainsFailures)
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tMETRIC\tOK 1m/1h/24h\tFAILED 1m/1h/24h\tLAST MESSAGE")
	rows := 0
	section := func(label string, metrics map[string]metric) {
		for _, name := range sortedKeys(metrics) {
			mt := metrics[name]
			if mt.idle() {
				continue // compact: only metrics that saw messages
			}
			rows++
			fmt.Fprintf(tw, "%s\t%s\t%d/%d/%d\t%d/%d/%d\t%s\n", sanitize(label), sanitize(name),
				mt.Success.M1, mt.Success.H1, mt.Success.H24, mt.Failure.M1, mt.Failure.H1, mt.Failure.H24, lastOf(mt))
		}
	}
	section("(all inbound)", m.Connection.Inbound)
	section("(all outbound)", m.Connection.Outbound)
	for _, addr := range sortedKeys(m.Source.Addresses) {
		section("source "+addr, m.Source.Addresses[addr])
	}
	for _, addr := range sortedKeys(m.Target.Addresses) {
		section("target "+addr, m.Target.Addresses[addr])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if rows == 0 {
		fmt.Fprintln(c.out, "(no messages yet)")
	}
	return nil
}

// lastOf is the later of a metric's success and failure times.
func lastOf(m metric) string {
	last := ""
	for _, t := range []*string{m.Success.Last, m.Failure.Last} {
		if t != nil && *t > last { // ISO-8601 instants in UTC compare as text
			last = *t
		}
	}
	if last == "" {
		return "-"
	}
	return sanitize(last)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (c *cli) logs(id string) error {
	r, err := c.do(http.MethodGet, idPath(id, "logs"), nil, nil, "", nil)
	if err != nil {
		return err
	}
	if err := expect(r, http.StatusOK); err != nil {
		return err
	}
	if c.output == "json" {
		c.printJSON(r.body)
		return nil
	}
	var l struct {
		Logs []struct {
			Timestamp string `json:"timestamp"`
			Level     string `json:"level"`
			Category  string `json:"category"`
			Type      string `json:"type"`
			Address   string `json:"address"`
			Message   string `json:"message"`
		} `json:"connectionLogs"`
		Since *string `json:"enabledSince"`
		Until *string `json:"enabledUntil"`
	}
	if err := json.Unmarshal(r.body, &l); err != nil {
		return &transportError{fmt.Errorf("the server's logs are not JSON: %v", err)}
	}
	if l.Since == nil {
		fmt.Fprintln(c.out, "logging is disabled (enable it with --enable)")
	} else {
		until := "-"
		if l.Until != nil {
			until = sanitize(*l.Until)
		}
		fmt.Fprintf(c.out, "logging enabled since %s until %s\n", sanitize(*l.Since), until)
	}
	if len(l.Logs) == 0 {
		fmt.Fprintln(c.out, "(no log entries)")
		return nil
	}
	fmt.Fprintln(c.out)
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tLEVEL\tCATEGORY\tTYPE\tADDRESS\tMESSAGE")
	for _, e := range l.Logs {
		addr := e.Address
		if addr == "" {
			addr = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", sanitize(e.Timestamp), sanitize(e.Level), sanitize(e.Category),
			sanitize(e.Type), sanitize(addr), sanitize(e.Message))
	}
	return tw.Flush()
}
