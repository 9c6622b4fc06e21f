package connections

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/dittoconn/dittoconn/proto/ditto"
)

// Paging sizes, as Ditto's search API has them.
const (
	DefaultPageSize = 25
	MaxPageSize     = 200
)

// cursorPrefix versions the cursor text so its format can change later.
const cursorPrefix = "v1:"

// Page is a parsed option=size(n),cursor(c).
type Page struct {
	Size int
	// After is the last id of the previous page; "" starts at the beginning.
	After string
}

// ParseOption parses the option query parameter in the form of Ditto's
// search API: comma-separated size(n), cursor(c) and sort(+id) (the only
// order connections are listed in).
func ParseOption(option string) (Page, *ditto.Error) {
	p := Page{Size: DefaultPageSize}
	seen := map[string]bool{}
	for _, part := range strings.Split(option, ",") {
		part = strings.TrimSpace(part)
		name, arg, ok := strings.Cut(part, "(")
		if !ok || !strings.HasSuffix(arg, ")") {
			return Page{}, ditto.OptionInvalid("The option <" + part + "> is not of the form name(value).")
		}
		arg = strings.TrimSuffix(arg, ")")
		if seen[name] {
			return Page{}, ditto.OptionInvalid("The option <" + name + "> is given more than once.")
		}
		seen[name] = true
		switch name {
		case "size":
			n, err := strconv.Atoi(arg)
			if err != nil || n < 1 || n > MaxPageSize {
				return Page{}, ditto.OptionInvalid("The page size <" + arg + "> is not between 1 and " + strconv.Itoa(MaxPageSize) + ".")
			}
			p.Size = n
		case "cursor":
			after, ok := decodeCursor(arg)
			if !ok {
				return Page{}, ditto.OptionInvalid("The cursor <" + arg + "> is not valid.")
			}
			p.After = after
		case "sort":
			if arg != "+id" && arg != "id" {
				return Page{}, ditto.OptionInvalid("Connections can only be sorted by <+id>.")
			}
		default:
			return Page{}, ditto.OptionInvalid("The option <" + name + "> is unknown; use size(n) and cursor(c).")
		}
	}
	return p, nil
}

// EncodeCursor is the opaque cursor of the page after id.
func EncodeCursor(afterID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + afterID))
}

func decodeCursor(c string) (string, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", false
	}
	id, ok := strings.CutPrefix(string(raw), cursorPrefix)
	if !ok || !idPattern.MatchString(id) {
		return "", false
	}
	return id, true
}

// list serves GET /api/2/connections: retrieveAllConnectionIds, then one
// retrieveConnection per id. ids-only=true (or fields=id) lists the ids
// only. Without paging more than ListLimit connections is Ditto's 400; with
// option=size(n),cursor(c) it answers {"items":[…],"cursor":"…"} instead,
// the cursor present while more pages follow.
func (a *API) list(c echo.Context) error {
	r, derr := a.begin(c, defaultTimeout)
	if derr != nil {
		return writeError(c, derr)
	}
	q := c.QueryParams()
	idsOnly := strings.EqualFold(q.Get("ids-only"), "true")
	selected := q.Get("fields")
	if strings.TrimSpace(selected) == "id" {
		idsOnly = true
	}
	var page *Page
	if q.Has("option") {
		p, derr := ParseOption(q.Get("option"))
		if derr != nil {
			return writeError(c, derr)
		}
		page = &p
	}

	ctx, cancel := context.WithTimeout(c.Request().Context(), r.timeout)
	defer cancel()
	o := a.send(ctx, r, ditto.PathConnectionIDs, ditto.RetrieveAllConnectionIDs)
	if o.err != nil {
		return fail(c, o)
	}
	var ids []string
	if json.Unmarshal(field(o.body, "connectionIds"), &ids) != nil {
		return writeError(c, ditto.InternalError("The connectivity service sent a malformed response."))
	}
	sort.Strings(ids)

	next := ""
	if page != nil {
		start := sort.SearchStrings(ids, page.After)
		if start < len(ids) && ids[start] == page.After && page.After != "" {
			start++
		}
		end := min(start+page.Size, len(ids))
		if end < len(ids) {
			next = EncodeCursor(ids[end-1])
		}
		ids = ids[start:end]
	} else if !idsOnly && len(ids) > a.cfg.ListLimit {
		return writeError(c, ditto.ConnectionsAmountIllegal(a.cfg.ListLimit))
	}

	var items []json.RawMessage
	if idsOnly {
		items = make([]json.RawMessage, len(ids))
		for i, id := range ids {
			items[i] = marshal(id)
		}
	} else {
		var failed *outcome
		items, failed = a.retrieveAll(ctx, r, ids, selected)
		if failed != nil {
			return fail(c, *failed)
		}
	}
	arr := joinArray(items)
	if page == nil {
		return c.JSONBlob(http.StatusOK, arr)
	}
	kv := []any{"items", json.RawMessage(arr)}
	if next != "" {
		kv = append(kv, "cursor", next)
	}
	return c.JSONBlob(http.StatusOK, object(kv...))
}

// retrieveAll retrieves the connections with a few calls in flight, keeping
// the order of ids. A connection deleted since the listing is left out; any
// other failure fails the listing.
func (a *API) retrieveAll(ctx context.Context, r *request, ids []string, selected string) ([]json.RawMessage, *outcome) {
	results := make([]outcome, len(ids))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < min(listWorkers, len(ids)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				fields := []any{"connectionId", ids[i]}
				if selected != "" {
					fields = append(fields, "selectedFields", selected)
				}
				results[i] = a.send(ctx, r, ditto.PathConnectionShard, ditto.RetrieveConnection, fields...)
			}
		}()
	}
	for i := range ids {
		jobs <- i
	}
	close(jobs)
	wg.Wait()

	items := make([]json.RawMessage, 0, len(ids))
	for i := range results {
		o := results[i]
		switch {
		case o.err != nil && o.err.Code == ditto.CodeConnectionNotFound:
			continue
		case o.err != nil:
			return nil, &o
		}
		items = append(items, field(o.body, "connection"))
	}
	return items, nil
}

func joinArray(items []json.RawMessage) []byte {
	var b strings.Builder
	b.WriteByte('[')
	for i, it := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(it)
	}
	b.WriteByte(']')
	return []byte(b.String())
}
