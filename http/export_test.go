package http_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/apitest"
	cairnhttp "github.com/cairn-dev/cairn/http"
	"github.com/cairn-dev/cairn/storetest"
)

// roleAuth authenticates every request as a principal of role (a
// unit-test double).
type roleAuth struct{ role string }

func (a roleAuth) Authenticate(context.Context, string) (*cairn.Principal, error) {
	return &cairn.Principal{UserID: "admin-1", Role: a.role}, nil
}

// exportStore serves ExportEvents from a slice, failing after failAfter
// events when failAfter >= 0 (a unit-test double).
type exportStore struct {
	nopStore
	events    []cairn.Event
	failAfter int
}

func (s exportStore) ExportEvents(ctx context.Context, user string, fn func(*cairn.Event) error) error {
	for i := range s.events {
		if i == s.failAfter {
			return cairn.Errorf(cairn.EUNAVAILABLE, "The store is unreachable.")
		}
		if user != "" && s.events[i].UserID != user {
			continue
		}
		if err := fn(&s.events[i]); err != nil {
			return err
		}
	}
	if s.failAfter == len(s.events) {
		return cairn.Errorf(cairn.EUNAVAILABLE, "The store is unreachable.")
	}
	return nil
}

func exportEvents() []cairn.Event {
	at := time.Date(2025, 12, 15, 10, 0, 0, 0, time.UTC)
	var out []cairn.Event
	for i := range 6 {
		user := "u1"
		if i >= 4 {
			user = "u2"
		}
		e := storetest.NewEvent(fmt.Sprintf("e%d", i), user, at.Add(time.Duration(i)*24*time.Hour))
		if i%2 == 1 {
			e.Type = "purchase"
		}
		out = append(out, e)
	}
	return out
}

func newExportServer(t *testing.T, role string, store cairn.EventStore, backup cairn.Backuper) string {
	t.Helper()
	srv := httptest.NewServer((&cairnhttp.Server{Ingester: &fakeIngester{}, Store: store, Auth: roleAuth{role}, Backup: backup}).Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

// ids returns the eventIds of an NDJSON body.
func ids(t *testing.T, body []byte) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		var e struct {
			EventID    string `json:"eventId"`
			OccurredAt string `json:"occurredAt"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.EventID == "" || e.OccurredAt == "" {
			t.Fatalf("line %q is not an event: %v", sc.Bytes(), err)
		}
		out = append(out, e.EventID)
	}
	return out
}

func TestExport(t *testing.T) {
	url := newExportServer(t, cairn.RoleAdmin, exportStore{events: exportEvents(), failAfter: -1}, nil)
	c := apitest.NewClient(t)
	for _, tc := range []struct {
		name, query string
		status      int
		want        []string
	}{
		{"All", "", 200, []string{"e0", "e1", "e2", "e3", "e4", "e5"}},
		{"User", "?user=u2", 200, []string{"e4", "e5"}},
		{"Type", "?type=purchase", 200, []string{"e1", "e3", "e5"}},
		{"FromToInclusive", "?from=2025-12-16T10:00:00Z&to=2025-12-18T10:00:00Z", 200, []string{"e1", "e2", "e3"}},
		{"Combined", "?user=u1&type=purchase&from=2025-12-17", 200, []string{"e3"}},
		{"NothingMatches", "?user=nobody", 200, nil},
		{"ErrBadFrom", "?from=yesterday", 400, nil},
		{"ErrFromAfterTo", "?from=2025-12-20&to=2025-12-01", 400, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, c, url+"/api/export"+tc.query)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.status != 200 {
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
				t.Errorf("Content-Type %q, want application/x-ndjson", ct)
			}
			if got := ids(t, body); !slices.Equal(got, tc.want) {
				t.Errorf("exported %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("Gzip", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url+"/api/export?user=u1", nil)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := c.Transport.RoundTrip(req) // no transparent decompression
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close() //nolint:errcheck // read below
		if resp.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("Content-Encoding %q, want gzip", resp.Header.Get("Content-Encoding"))
		}
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("gunzip: %v", err)
		}
		if got := ids(t, body); !slices.Equal(got, []string{"e0", "e1", "e2", "e3"}) {
			t.Errorf("exported %v", got)
		}
	})
	t.Run("ErrMember", func(t *testing.T) {
		url := newExportServer(t, cairn.RoleMember, exportStore{events: exportEvents(), failAfter: -1}, nil)
		if resp, body := get(t, c, url+"/api/export"); resp.StatusCode != http.StatusForbidden {
			t.Errorf("a member's export: %d %s, want 403", resp.StatusCode, body)
		}
	})
}

// TestExportStoreFailure checks that a store failure before the first line
// is an error status, and after it an error line and an aborted response,
// with and without gzip.
func TestExportStoreFailure(t *testing.T) {
	c := apitest.NewClient(t)
	early := newExportServer(t, cairn.RoleAdmin, exportStore{events: exportEvents(), failAfter: 0}, nil)
	if resp, body := get(t, c, early+"/api/export"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("failure before the first line: %d %s, want 503", resp.StatusCode, body)
	}
	late := newExportServer(t, cairn.RoleAdmin, exportStore{events: exportEvents(), failAfter: 3}, nil)
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprintf("Gzip=%v", gz), func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, late+"/api/export", nil)
			if gz {
				req.Header.Set("Accept-Encoding", "gzip")
			}
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close() //nolint:errcheck // read below
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			var r io.Reader = resp.Body
			if gz {
				zr, err := gzip.NewReader(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				r = zr
			}
			body, err := io.ReadAll(r)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("reading an incomplete export: %v, want an unexpected EOF", err)
			}
			lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
			if len(lines) != 4 {
				t.Fatalf("got %d lines, want 3 events and an error line:\n%s", len(lines), body)
			}
			var last struct {
				Error, Code string
				Incomplete  bool
			}
			if err := json.Unmarshal([]byte(lines[3]), &last); err != nil || !last.Incomplete || last.Code != "unavailable" ||
				!strings.HasPrefix(last.Error, "Export incomplete") {
				t.Errorf("last line %q, want the incomplete-export error line (%v)", lines[3], err)
			}
		})
	}
}

// fakeBackup writes body, or fails with err (before writing when early).
type fakeBackup struct {
	body  string
	err   error
	early bool
}

func (b fakeBackup) Backup(_ context.Context, w io.Writer) error {
	if b.early {
		return b.err
	}
	if _, err := io.WriteString(w, b.body); err != nil {
		return err
	}
	return b.err
}

func TestBackupEndpoint(t *testing.T) {
	c := apitest.NewClient(t)
	post := func(url string) (*http.Response, []byte) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, url+"/api/backup", nil)
		return do(t, c, req)
	}
	for _, tc := range []struct {
		name   string
		role   string
		backup cairn.Backuper
		status int
		code   string
	}{
		{"OK", cairn.RoleAdmin, fakeBackup{body: "archive"}, 200, ""},
		{"ErrMongo", cairn.RoleAdmin, nil, 501, "not_implemented"},
		{"ErrMember", cairn.RoleMember, fakeBackup{body: "archive"}, 403, "forbidden"},
		{"ErrRunning", cairn.RoleAdmin, fakeBackup{err: cairn.Errorf(cairn.ECONFLICT, "A backup is already running."), early: true}, 409, "conflict"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := post(newExportServer(t, tc.role, nopStore{}, tc.backup))
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.status == 200 {
				if string(body) != "archive" || resp.Header.Get("Content-Type") != "application/x-tar" ||
					!strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment;") {
					t.Errorf("got %q, headers %v", body, resp.Header)
				}
				return
			}
			var e struct{ Code string }
			if err := json.Unmarshal(body, &e); err != nil || e.Code != tc.code {
				t.Errorf("body %s, want code %s", body, tc.code)
			}
		})
	}
	t.Run("ErrMidStream", func(t *testing.T) {
		url := newExportServer(t, cairn.RoleAdmin, nopStore{}, fakeBackup{body: strings.Repeat("x", 1000), err: errors.New("disk gone")})
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, url+"/api/backup", nil)
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close() //nolint:errcheck // read below
		if _, err := io.ReadAll(resp.Body); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("reading an aborted backup: %v, want an unexpected EOF", err)
		}
	})
}
