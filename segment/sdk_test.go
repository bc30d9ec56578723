package segment_test

import (
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/segment"
)

// capture is the part of a recorded SDK exchange (testdata/*.json, see
// testdata/CAPTURES.md) the tests use.
type capture struct {
	ReceivedAt time.Time `json:"receivedAt"`
	Request    struct {
		Path    string `json:"path"`
		BodyRaw string `json:"bodyRaw"`
	} `json:"request"`
}

func loadCapture(t *testing.T, name string) capture {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var c capture
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return c
}

// decodeCapture decodes a capture's body as the route it was sent to.
func decodeCapture(t *testing.T, name string) *segment.Request {
	t.Helper()
	c := loadCapture(t, name)
	req, err := segment.Decode([]byte(c.Request.BodyRaw), path.Base(c.Request.Path), c.ReceivedAt, segment.Options{})
	if err != nil {
		t.Fatalf("%s: Decode: %v", name, err)
	}
	return req
}

type wantMessage struct {
	eventID, userID, anonID, typ, segType, occurredAt string
}

func TestDecodeSDKCaptures(t *testing.T) {
	const ajsAnon = "c9458a6a-d609-4431-8f1d-3ce200e4389a"
	const ajsBatchAnon = "9a2ec855-c2af-4cb4-9ff3-5d4f6a71d49c"
	cases := []struct {
		file string
		call string
		want []wantMessage
	}{
		// analytics-go: Basic auth only, batch-level context and sentAt,
		// nanosecond timestamps. Skew = receivedAt − sentAt = 3 ms.
		{"analytics-go-basic-01", segment.CallBatch, []wantMessage{
			{"b00949e8-a6c4-4aed-821f-b84939598e1a", "user-42", "", "Order Completed", "track", "2024-01-02T03:04:05.681Z"},
			{"7fd475db-0609-4342-ad56-69a863901bb0", "user-42", "", "$identify", "identify", "2026-11-25T20:07:13.313Z"},
			{"1137da00-6f68-4d83-a74a-cc6dc04558a4", "anon-7f3c", "anon-7f3c", "$page", "page", "2026-11-25T20:07:13.313Z"},
		}},
		{"analytics-go-basic-02", segment.CallBatch, []wantMessage{
			{"d530a8e3-c317-4197-b9bf-3679b88dbd30", "user-42", "", "$screen", "screen", "2026-11-25T20:07:13.316Z"},
			{"3f5f5c34-41bb-4569-93f2-e8fafb66ce9c", "user-42", "", "$group", "group", "2026-11-25T20:07:13.316Z"},
			{"783336ca-9728-474d-aeb3-d6b09a79867f", "user-42", "", "$alias", "alias", "2026-11-25T20:07:13.316Z"},
		}},
		// analytics-node: write key in Basic auth and the body. Skew 28 ms,
		// then 11 ms.
		{"analytics-node-basic-01", segment.CallBatch, []wantMessage{
			{"node-next-1795637054122-1151e242-c63d-4d04-84fa-b4e0095bfb48", "user-42", "", "$identify", "identify", "2026-11-25T20:04:14.150Z"},
			{"node-next-1795637054122-e242c63d-9d04-44fa-b4e0-095bfb4839e2", "user-42", "", "Order Completed", "track", "2024-01-02T03:04:05.706Z"},
			{"node-next-1795637054123-c63d9d04-04fa-44e0-895b-fb4839e2244b", "anon-7f3c", "anon-7f3c", "$page", "page", "2026-11-25T20:04:14.151Z"},
		}},
		{"analytics-node-basic-02", segment.CallBatch, []wantMessage{
			{"node-next-1795637054123-9d0404fa-b4e0-495b-bb48-39e2244bb4a5", "user-42", "", "$screen", "screen", "2026-11-25T20:04:14.134Z"},
			{"node-next-1795637054123-04fab4e0-095b-4b48-b9e2-244bb4a59e7f", "user-42", "", "$group", "group", "2026-11-25T20:04:14.134Z"},
			{"node-next-1795637054123-b4e0095b-fb48-49e2-a44b-b4a59e7f050b", "user-42", "", "$alias", "alias", "2026-11-25T20:04:14.134Z"},
		}},
		// analytics-next: one request per call to /v1/<letter>, sentAt per
		// event, always an anonymousId.
		{"analytics-next-jsdom-default-01", segment.CallIdentify, []wantMessage{
			{"ajs-next-1795637287543-67c9458a-6ad6-4904-b1cf-1d3ce200e438", "user-42", ajsAnon, "$identify", "identify", "2026-11-25T20:08:07.569Z"},
		}},
		{"analytics-next-jsdom-default-02", segment.CallTrack, []wantMessage{
			{"ajs-next-1795637287598-8a6ad609-0431-4f1d-bce2-00e4389aaada", "user-42", ajsAnon, "Order Completed", "track", "2026-11-25T20:08:07.599Z"},
		}},
		{"analytics-next-jsdom-default-03", segment.CallPage, []wantMessage{
			{"ajs-next-1795637287604-d6090431-cf1d-4ce2-80e4-389aaada159a", "user-42", ajsAnon, "$page", "page", "2026-11-25T20:08:07.605Z"},
		}},
		{"analytics-next-jsdom-batching", segment.CallBatch, []wantMessage{
			{"ajs-next-1795637288574-f79a2ec8-55c2-4fdc-b45f-f35d4f6a71d4", "user-42", ajsBatchAnon, "$identify", "identify", "2026-11-25T20:08:08.602Z"},
			{"ajs-next-1795637288600-c855c2af-dcb4-4ff3-9d4f-6a71d49c5c79", "user-42", ajsBatchAnon, "Order Completed", "track", "2026-11-25T20:08:08.628Z"},
			{"ajs-next-1795637288604-c2afdcb4-5ff3-4d4f-aa71-d49c5c7924ed", "user-42", ajsBatchAnon, "$page", "page", "2026-11-25T20:08:08.632Z"},
		}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			req := decodeCapture(t, c.file)
			if req.Call != c.call {
				t.Errorf("call = %q, want %q", req.Call, c.call)
			}
			if req.WriteKey != "wk_test_123" && c.file[:12] != "analytics-go" {
				t.Errorf("write key = %q, want wk_test_123", req.WriteKey)
			}
			if len(req.Rejected) != 0 {
				t.Fatalf("rejected %+v, want none", req.Rejected)
			}
			if len(req.Messages) != len(c.want) {
				t.Fatalf("%d messages, want %d", len(req.Messages), len(c.want))
			}
			recv := loadCapture(t, c.file).ReceivedAt
			for i, w := range c.want {
				m := req.Messages[i]
				e := m.Event
				got := wantMessage{e.EventID, e.UserID, m.AnonymousID, e.Type, m.Type, cairn.FormatTime(e.OccurredAt)}
				if got != w {
					t.Errorf("message %d = %+v, want %+v", i, got, w)
				}
				if m.MessageID != w.eventID || m.Index != i {
					t.Errorf("message %d: messageId %q index %d", i, m.MessageID, m.Index)
				}
				if !e.ReceivedAt.Equal(recv) {
					t.Errorf("message %d: receivedAt %v, want %v", i, e.ReceivedAt, recv)
				}
				checkEvent(t, e)
				var payload map[string]any
				if err := json.Unmarshal(e.Payload, &payload); err != nil {
					t.Fatalf("message %d payload: %v", i, err)
				}
				if _, ok := payload["writeKey"]; ok {
					t.Errorf("message %d payload keeps writeKey", i)
				}
				if payload["messageId"] != w.eventID || payload["type"] != w.segType {
					t.Errorf("message %d payload lost fields: %s", i, e.Payload)
				}
				if _, ok := payload["timestamp"]; !ok {
					t.Errorf("message %d payload lost the raw timestamp: %s", i, e.Payload)
				}
			}
		})
	}
}

// TestSDKCaptureDetails checks what the table above does not: batch
// context merged into analytics-go's messages, traits, group and alias ids.
func TestSDKCaptureDetails(t *testing.T) {
	req := decodeCapture(t, "analytics-go-basic-01")
	var p struct {
		Context map[string]any `json:"context"`
	}
	if err := json.Unmarshal(req.Messages[0].Event.Payload, &p); err != nil {
		t.Fatal(err)
	}
	lib, _ := p.Context["library"].(map[string]any)
	if p.Context["ip"] != "203.0.113.9" || lib["name"] != "analytics-go" {
		t.Errorf("batch context not merged under the message's own: %s", req.Messages[0].Event.Payload)
	}
	if string(req.Messages[1].Traits) == "" {
		t.Errorf("identify traits missing")
	}
	var traits map[string]string
	if err := json.Unmarshal(req.Messages[1].Traits, &traits); err != nil || traits["email"] != "ada@example.com" {
		t.Errorf("traits = %s, %v", req.Messages[1].Traits, err)
	}
	req = decodeCapture(t, "analytics-go-basic-02")
	if g, a := req.Messages[1], req.Messages[2]; g.GroupID != "org-9" || a.PreviousID != "anon-7f3c" || a.UserID != "user-42" {
		t.Errorf("group %q / alias %q → %q", g.GroupID, a.PreviousID, a.UserID)
	}
}

// TestSDKRetriesDedupe decodes an SDK's first attempt and its retry: the
// eventIds are the same, and so is the skew-corrected time even though
// analytics-node sends a new sentAt on retry.
func TestSDKRetriesDedupe(t *testing.T) {
	// analytics-go resends a byte-identical body (same sentAt), so its
	// corrected time moves by the retry delay; only the eventId must hold.
	for sdk, tolerance := range map[string]time.Duration{"analytics-node": 5 * time.Millisecond, "analytics-go": time.Hour} {
		t.Run(sdk, func(t *testing.T) {
			first := decodeCapture(t, sdk+"-retry-500-01")
			retry := decodeCapture(t, sdk+"-retry-500-02")
			if len(first.Messages) == 0 || len(first.Messages) != len(retry.Messages) {
				t.Fatalf("%d vs %d messages", len(first.Messages), len(retry.Messages))
			}
			for i := range first.Messages {
				a, b := first.Messages[i].Event, retry.Messages[i].Event
				if a.EventID == "" || a.EventID != b.EventID {
					t.Errorf("message %d: eventId %q then %q", i, a.EventID, b.EventID)
				}
				if d := a.OccurredAt.Sub(b.OccurredAt).Abs(); d > tolerance {
					t.Errorf("message %d: occurredAt %v then %v", i, a.OccurredAt, b.OccurredAt)
				}
			}
		})
	}
}
