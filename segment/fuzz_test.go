package segment_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/segment"
)

// FuzzDecode checks that Decode never panics, that every message is either
// accepted or rejected, and that accepted events pass Cairn's event
// validation. The seeds are the SDK captures and the table cases' shapes.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, file := range files {
		var c capture
		if b, err := os.ReadFile(file); err == nil && jsonUnmarshal(b, &c) == nil && c.Request.BodyRaw != "" {
			f.Add([]byte(c.Request.BodyRaw), filepath.Base(c.Request.Path), c.ReceivedAt.UnixMilli())
		}
	}
	for _, s := range []string{
		`{"batch":[{"type":"track","userId":"u","event":"$x","messageId":"a b","timestamp":"2024-01-02T03:04:05.123456789Z","sentAt":"2024-01-02T03:04:06Z"}],"context":{"sessionId":7}}`,
		`{"batch":[{"type":"alias","userId":"u","previousId":"p"},{"type":"group","anonymousId":"a","groupId":1},"x",null]}`,
		`{"userId":"u","event":"E","integrations":{"Actions Amplitude":{"session_id":1}},"writeKey":"k"}`,
		`{"anonymousId":"a","timestamp":"1970-01-01T00:00:00Z","sentAt":"9999-12-31T23:59:59Z"}`,
	} {
		f.Add([]byte(s), "batch", recv.UnixMilli())
		f.Add([]byte(s), "t", recv.UnixMilli())
	}
	f.Fuzz(func(t *testing.T, body []byte, call string, recvMS int64) {
		received := time.UnixMilli(recvMS % (253402300799999 + 1)).UTC()
		if received.Before(time.Unix(0, 0)) {
			received = recv
		}
		req, err := segment.Decode(body, call, received, segment.Options{})
		if err != nil {
			if code := cairn.ErrorCode(err); code != cairn.EINVALID && code != cairn.ETOOLARGE {
				t.Fatalf("error code %q: %v", code, err)
			}
			return
		}
		for i, m := range req.Messages {
			if i > 0 && m.Index <= req.Messages[i-1].Index {
				t.Fatalf("messages out of order: %d after %d", m.Index, req.Messages[i-1].Index)
			}
			if !m.Event.ReceivedAt.Equal(received.Truncate(time.Millisecond)) {
				t.Fatalf("receivedAt %v, want %v", m.Event.ReceivedAt, received)
			}
			checkEvent(t, m.Event)
		}
		for _, r := range req.Rejected {
			if r.Reason == "" {
				t.Fatalf("rejection without a reason: %+v", r)
			}
		}
	})
}
