package http

import (
	"bufio"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-dev/cairn"
)

// exportQuery is what GET /api/export selects.
type exportQuery struct {
	user, typ string
	from, to  time.Time
}

func (q *exportQuery) match(e *cairn.Event) bool {
	return (q.typ == "" || e.Type == q.typ) &&
		(q.from.IsZero() || !e.OccurredAt.Before(q.from)) &&
		(q.to.IsZero() || !e.OccurredAt.After(q.to))
}

// handleExport serves GET /api/export?user=&from=&to=&type=, for admins: the
// stored events as NDJSON, one journey-shaped event per line, streamed from
// EventStore.ExportEvents (by user, each user's newest first) without
// holding the result in memory; gzip-compressed when the client accepts it.
//
// A store failure before the first line is an ordinary JSON error
// response. A failure after the response has begun cannot change its
// status, so the export ends with one error line,
// {"error":"…","code":"…","incomplete":true}, and the connection is then
// aborted without the end of the chunked body (and of the gzip stream): a
// line-oriented reader sees the error line, an HTTP client sees an
// unexpected EOF; neither mistakes it for a complete export.
func (s *Server) handleExport(w http.ResponseWriter, r *http.Request) {
	if !cairn.PrincipalFromContext(r.Context()).IsAdmin() {
		s.writeError(w, r, cairn.Errorf(cairn.EFORBIDDEN, "Only admins may export events."))
		return
	}
	q, err := parseExportQuery(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{}) // an export may outlast the server's write timeout
	ex := &exportWriter{w: w, gzip: acceptsGzip(r.Header.Get("Accept-Encoding"))}
	var line []byte
	err = s.Store.ExportEvents(r.Context(), q.user, func(e *cairn.Event) error {
		if !q.match(e) {
			return nil
		}
		line = append(e.AppendJSON(line[:0]), '\n')
		return ex.write(line)
	})
	if err == nil {
		err = ex.finish()
	}
	if err == nil {
		return
	}
	if errors.Is(err, errClientGone) || r.Context().Err() != nil {
		return // nobody is reading
	}
	if !ex.started {
		s.writeError(w, r, err)
		return
	}
	loggerFrom(r, s.Logger).Error("export failed mid-stream; aborting the response", "err", err)
	b := []byte(`{"error":`)
	b = cairn.AppendJSONString(b, "Export incomplete: "+cairn.ErrorMessage(err))
	b = append(b, `,"code":`...)
	b = cairn.AppendJSONString(b, cairn.ErrorCode(err))
	b = append(b, `,"incomplete":true}`+"\n"...)
	_ = ex.write(b)
	_ = ex.flush()
	_ = http.NewResponseController(w).Flush() // the lines sent so far reach the client before the abort
	panic(http.ErrAbortHandler)
}

// errClientGone wraps a failed write to the client.
var errClientGone = errors.New("client gone")

// exportWriter starts the 200 response with the first line, so that a
// store that fails at once still gets a proper error status.
type exportWriter struct {
	w       http.ResponseWriter
	gzip    bool
	started bool
	bw      *bufio.Writer
	zw      *gzip.Writer
}

func (x *exportWriter) start() {
	h := x.w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	h.Add("Vary", "Accept-Encoding")
	var dst io.Writer = x.w
	if x.gzip {
		h.Set("Content-Encoding", "gzip")
		x.zw = gzip.NewWriter(x.w)
		dst = x.zw
	}
	x.w.WriteHeader(http.StatusOK)
	x.bw = bufio.NewWriterSize(dst, 64<<10)
	x.started = true
}

func (x *exportWriter) write(b []byte) error {
	if !x.started {
		x.start()
	}
	if _, err := x.bw.Write(b); err != nil {
		return errors.Join(errClientGone, err)
	}
	return nil
}

// flush pushes buffered lines to the client without ending the stream.
func (x *exportWriter) flush() error {
	if err := x.bw.Flush(); err != nil {
		return errors.Join(errClientGone, err)
	}
	if x.zw != nil {
		if err := x.zw.Flush(); err != nil {
			return errors.Join(errClientGone, err)
		}
	}
	return nil
}

// finish ends a complete export (an empty one is a 200 with no lines).
func (x *exportWriter) finish() error {
	if !x.started {
		x.start()
	}
	if err := x.bw.Flush(); err != nil {
		return errors.Join(errClientGone, err)
	}
	if x.zw != nil {
		if err := x.zw.Close(); err != nil {
			return errors.Join(errClientGone, err)
		}
	}
	return nil
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip.
func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		if k, v, ok := strings.Cut(strings.TrimSpace(params), "="); ok && strings.TrimSpace(k) == "q" {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && f == 0 {
				return false
			}
		}
		return true
	}
	return false
}

// parseExportQuery validates GET /api/export's query parameters.
func parseExportQuery(r *http.Request) (exportQuery, error) {
	var q exportQuery
	params, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return q, cairn.Errorf(cairn.EINVALID, "Malformed query string.")
	}
	q.user = strings.TrimSpace(params.Get("user"))
	if len(q.user) > cairn.MaxIDBytes {
		return q, cairn.Errorf(cairn.EINVALID, "user must be at most %d bytes.", cairn.MaxIDBytes)
	}
	q.typ = params.Get("type")
	if len(q.typ) > cairn.MaxIDBytes {
		return q, cairn.Errorf(cairn.EINVALID, "type must be at most %d bytes.", cairn.MaxIDBytes)
	}
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"from", &q.from}, {"to", &q.to}} {
		v := params.Get(p.name)
		if v == "" {
			continue
		}
		if *p.t, err = cairn.ParseTime(v); err != nil {
			return q, cairn.Errorf(cairn.EINVALID, "%s must be an ISO 8601 date (e.g. 2025-12-15 or 2025-12-15T10:30:00Z).", p.name)
		}
	}
	if !q.from.IsZero() && !q.to.IsZero() && q.from.After(q.to) {
		return q, cairn.Errorf(cairn.EINVALID, "from must not be after to.")
	}
	return q, nil
}
