package segment_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/segment"
)

var recv = time.Date(2026, 11, 25, 20, 0, 0, 500_000_000, time.UTC)

const recvS = "2026-11-25T20:00:00.500Z"

// result summarizes one decoded message, or its rejection reason.
type result struct {
	reason, eventID, userID, typ, session, occurredAt string
}

func summarize(t *testing.T, req *segment.Request) result {
	t.Helper()
	if n := len(req.Messages) + len(req.Rejected); n != 1 {
		t.Fatalf("%d messages + rejections, want 1: %+v", n, req)
	}
	if len(req.Rejected) == 1 {
		return result{reason: req.Rejected[0].Reason}
	}
	e := req.Messages[0].Event
	checkEvent(t, e)
	return result{"", e.EventID, e.UserID, e.Type, e.SessionID, cairn.FormatTime(e.OccurredAt)}
}

func TestDecodeMapping(t *testing.T) {
	long := strings.Repeat("x", 129)
	cases := []struct {
		name string
		call string
		body string // a single message, wrapped in {"batch":[…]} when call is "batch"
		want result
	}{
		// Identity.
		{"UserID", "track", `{"userId":"u1","anonymousId":"a1","event":"E"}`, result{"", "", "u1", "E", "", recvS}},
		{"AnonymousIDOnly", "track", `{"anonymousId":" a1 ","event":"E"}`, result{"", "", "a1", "E", "", recvS}},
		{"EmptyUserIDFallsBack", "track", `{"userId":"","anonymousId":"a1","event":"E"}`, result{"", "", "a1", "E", "", recvS}},
		{"NumericUserID", "track", `{"userId":42,"event":"E"}`, result{"", "", "42", "E", "", recvS}},
		{"ErrNoUserAnonID", "track", `{"event":"E"}`, result{reason: "no_user_anon_id"}},
		{"ErrNullIDs", "track", `{"userId":null,"anonymousId":"  ","event":"E"}`, result{reason: "no_user_anon_id"}},
		{"ErrUserIDObject", "track", `{"userId":{},"event":"E"}`, result{reason: "invalid_user_id"}},
		{"ErrUserIDTooLong", "track", `{"userId":"` + strings.Repeat("u", 257) + `","event":"E"}`, result{reason: "invalid_user_id"}},
		{"ErrAnonIDArray", "track", `{"userId":"u","anonymousId":[1],"event":"E"}`, result{reason: "invalid_anonymous_id"}},

		// Types.
		{"TrackName", "batch", `{"type":"track","userId":"u","event":"Order Completed"}`, result{"", "", "u", "Order Completed", "", recvS}},
		{"TrackDollarEscaped", "track", `{"userId":"u","event":"$identify"}`, result{"", "", "u", "$$identify", "", recvS}},
		{"TrackMaxName", "track", `{"userId":"u","event":"` + strings.Repeat("é", 200) + `"}`, result{"", "", "u", strings.Repeat("é", 200), "", recvS}},
		{"ErrTrackNameTooLong", "track", `{"userId":"u","event":"` + strings.Repeat("e", 201) + `"}`, result{reason: "invalid_event"}},
		{"ErrTrackNoEvent", "track", `{"userId":"u"}`, result{reason: "missing_event"}},
		{"ErrTrackEmptyEvent", "batch", `{"type":"track","userId":"u","event":""}`, result{reason: "missing_event"}},
		{"ErrTrackEventNumber", "track", `{"userId":"u","event":5}`, result{reason: "invalid_event"}},
		{"Identify", "identify", `{"userId":"u","traits":{"plan":"pro"}}`, result{"", "", "u", "$identify", "", recvS}},
		{"IdentifyShortForm", "i", `{"userId":"u"}`, result{"", "", "u", "$identify", "", recvS}},
		{"Page", "p", `{"anonymousId":"a","name":"Home"}`, result{"", "", "a", "$page", "", recvS}},
		{"Screen", "screen", `{"userId":"u","name":"Home"}`, result{"", "", "u", "$screen", "", recvS}},
		{"Group", "g", `{"userId":"u","groupId":"org-9"}`, result{"", "", "u", "$group", "", recvS}},
		{"ErrGroupNoGroupID", "group", `{"userId":"u"}`, result{reason: "missing_group_id"}},
		{"Alias", "a", `{"userId":"u","previousId":"anon-1"}`, result{"", "", "u", "$alias", "", recvS}},
		{"ErrAliasNoPreviousID", "alias", `{"userId":"u"}`, result{reason: "missing_previous_id"}},
		{"ErrAliasNoUserID", "alias", `{"anonymousId":"a","previousId":"anon-1"}`, result{reason: "missing_user_id"}},
		{"ErrBatchItemNoType", "batch", `{"userId":"u","event":"E"}`, result{reason: "missing_type"}},
		{"ErrBatchItemUnknownType", "batch", `{"type":"purchase","userId":"u"}`, result{reason: "invalid_type"}},
		{"ErrBatchItemTypeNumber", "batch", `{"type":1,"userId":"u"}`, result{reason: "invalid_type"}},
		{"ErrSingleCallTypeMismatch", "t", `{"type":"page","userId":"u","event":"E"}`, result{reason: "invalid_type"}},
		{"ErrBatchItemNotObject", "batch", `"hello"`, result{reason: "not_object"}},

		// Event ids.
		{"MessageID", "track", `{"messageId":"ajs-next-1-abc","userId":"u","event":"E"}`, result{"", "ajs-next-1-abc", "u", "E", "", recvS}},
		{"MessageIDMapped", "track", `{"messageId":"a b/c","userId":"u","event":"E"}`, result{"", segment.EventID("a b/c"), "u", "E", "", recvS}},
		{"MessageIDTooLongMapped", "track", `{"messageId":"` + long + `","userId":"u","event":"E"}`, result{"", segment.EventID(long), "u", "E", "", recvS}},
		{"MessageIDVeryLongMapped", "track", `{"messageId":"` + strings.Repeat("m", 1000) + `","userId":"u","event":"E"}`, result{"", segment.EventID(strings.Repeat("m", 1000)), "u", "E", "", recvS}},
		{"MessageIDSpacesMapped", "track", `{"messageId":" m1 ","userId":"u","event":"E"}`, result{"", segment.EventID(" m1 "), "u", "E", "", recvS}},
		{"MessageIDNumber", "track", `{"messageId":12345,"userId":"u","event":"E"}`, result{"", "12345", "u", "E", "", recvS}},
		{"ErrMessageIDObject", "track", `{"messageId":{"a":1},"userId":"u","event":"E"}`, result{reason: "invalid_message_id"}},

		// Sessions.
		{"ContextSessionID", "track", `{"userId":"u","event":"E","context":{"sessionId":"s-1"}}`, result{"", "", "u", "E", "s-1", recvS}},
		{"AmplitudeSessionID", "track", `{"userId":"u","event":"E","integrations":{"Actions Amplitude":{"session_id":1764619200000}}}`, result{"", "", "u", "E", "1764619200000", recvS}},
		{"ContextSessionIDWins", "track", `{"userId":"u","event":"E","context":{"sessionId":"s-1"},"integrations":{"Actions Amplitude":{"session_id":"s-2"}}}`, result{"", "", "u", "E", "s-1", recvS}},
		{"BatchContextSessionID", "batch", `{"type":"track","userId":"u","event":"E"}],"context":{"sessionId":"s-b"},"x":[0`, result{"", "", "u", "E", "s-b", recvS}},
		{"ErrContextNotObject", "track", `{"userId":"u","event":"E","context":"web"}`, result{reason: "invalid_context"}},
		{"ErrIntegrationsNotObject", "track", `{"userId":"u","event":"E","integrations":[true]}`, result{reason: "invalid_context"}},

		// Times: receivedAt − (sentAt − timestamp).
		{"SkewCorrected", "track", `{"userId":"u","event":"E","timestamp":"2026-11-25T19:00:00.000Z","sentAt":"2026-11-25T19:00:10Z"}`, result{"", "", "u", "E", "", "2026-11-25T19:59:50.500Z"}},
		{"OriginalTimestampWins", "track", `{"userId":"u","event":"E","originalTimestamp":"2026-11-25T19:00:00Z","timestamp":"2020-01-01T00:00:00Z","sentAt":"2026-11-25T19:00:01Z"}`, result{"", "", "u", "E", "", "2026-11-25T19:59:59.500Z"}},
		{"BatchSentAt", "batch", `{"type":"track","userId":"u","event":"E","timestamp":"2026-11-25T10:00:00Z"}],"sentAt":"2026-11-25T10:00:02Z","x":[0`, result{"", "", "u", "E", "", "2026-11-25T19:59:58.500Z"}},
		{"MessageSentAtWins", "batch", `{"type":"track","userId":"u","event":"E","timestamp":"2026-11-25T10:00:00Z","sentAt":"2026-11-25T10:00:01Z"}],"sentAt":"2026-11-25T10:00:02Z","x":[0`, result{"", "", "u", "E", "", "2026-11-25T19:59:59.500Z"}},
		{"TimestampOnly", "track", `{"userId":"u","event":"E","timestamp":"2024-01-02T03:04:05.678Z"}`, result{"", "", "u", "E", "", "2024-01-02T03:04:05.678Z"}},
		{"Import2024Skew", "track", `{"userId":"u","event":"E","timestamp":"2024-01-02T03:04:05.678Z","sentAt":"2026-11-25T20:00:00.400Z"}`, result{"", "", "u", "E", "", "2024-01-02T03:04:05.778Z"}},
		{"SentAtOnly", "track", `{"userId":"u","event":"E","sentAt":"2020-01-01T00:00:00Z"}`, result{"", "", "u", "E", "", recvS}},
		{"NoFraction", "track", `{"userId":"u","event":"E","timestamp":"2024-01-02T03:04:05Z"}`, result{"", "", "u", "E", "", "2024-01-02T03:04:05.000Z"}},
		{"OneDigitFraction", "track", `{"userId":"u","event":"E","timestamp":"2024-01-02T03:04:05.6Z"}`, result{"", "", "u", "E", "", "2024-01-02T03:04:05.600Z"}},
		{"NineDigitFraction", "track", `{"userId":"u","event":"E","timestamp":"2024-01-02T03:04:05.123456789Z"}`, result{"", "", "u", "E", "", "2024-01-02T03:04:05.123Z"}},
		{"Offset", "track", `{"userId":"u","event":"E","timestamp":"2024-01-02T05:04:05.5+02:00"}`, result{"", "", "u", "E", "", "2024-01-02T03:04:05.500Z"}},
		{"FutureBecomesReceivedAt", "track", `{"userId":"u","event":"E","timestamp":"2027-06-01T00:00:00Z"}`, result{"", "", "u", "E", "", recvS}},
		{"ErrTimestampGarbage", "track", `{"userId":"u","event":"E","timestamp":"yesterday"}`, result{reason: "invalid_timestamp"}},
		{"ErrTimestampNumber", "track", `{"userId":"u","event":"E","timestamp":1700000000000}`, result{reason: "invalid_timestamp"}},
		{"ErrSentAtGarbage", "track", `{"userId":"u","event":"E","timestamp":"2024-01-02T03:04:05Z","sentAt":"soon"}`, result{reason: "invalid_timestamp"}},
		{"ErrBefore1970", "track", `{"userId":"u","event":"E","timestamp":"1969-12-31T23:59:59Z"}`, result{reason: "invalid_timestamp"}},
		{"ErrSkewBefore1970", "track", `{"userId":"u","event":"E","timestamp":"1970-01-01T00:00:00Z","sentAt":"2100-01-01T00:00:00Z"}`, result{reason: "invalid_timestamp"}},

		// Size and write keys.
		{"ErrMessageTooLarge", "batch", `{"type":"track","userId":"u","event":"E","properties":{"p":"` + strings.Repeat("x", 32<<10) + `"}}`, result{reason: "too_large"}},
		{"ErrWriteKeyNotString", "batch", `{"type":"track","userId":"u","event":"E","writeKey":7}`, result{reason: "invalid_write_key"}},
		{"ErrWriteKeyMismatch", "batch", `{"type":"track","userId":"u","event":"E","writeKey":"other"}],"writeKey":"wk","x":[0`, result{reason: "write_key_mismatch"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := c.body
			if c.call == "batch" {
				body = `{"batch":[` + body + `]}`
			}
			req, err := segment.Decode([]byte(body), c.call, recv, segment.Options{})
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got := summarize(t, req); got != c.want {
				t.Fatalf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestDecodePayload(t *testing.T) {
	cases := []struct {
		name string
		body string // a batch body
		want string // the first message's payload
	}{
		{"AsReceivedWithoutWriteKey",
			`{"batch":[{"type":"track", "writeKey":"wk","userId":"u","event":"E","properties":{"a":1.50,"b":[1,2]},"sentAt":"2026-11-25T20:00:00Z"}]}`,
			`{"type":"track","userId":"u","event":"E","properties":{"a":1.50,"b":[1,2]},"sentAt":"2026-11-25T20:00:00Z"}`},
		{"BatchContextMerged",
			`{"batch":[{"type":"track","userId":"u","event":"E","context":{"ip":"1.2.3.4","locale":"en"}}],"context":{"locale":"fr","library":{"name":"go"}}}`,
			`{"type":"track","userId":"u","event":"E","context":{"ip":"1.2.3.4","locale":"en","library":{"name":"go"}}}`},
		{"BatchContextAdded",
			`{"batch":[{"type":"track","userId":"u","event":"E"}],"context":{"library":{"name":"go"}},"integrations":{"All":false}}`,
			`{"type":"track","userId":"u","event":"E","context":{"library":{"name":"go"}},"integrations":{"All":false}}`},
		{"NullContextTakesBatch",
			`{"batch":[{"type":"track","userId":"u","event":"E","context":null}],"context":{"a":1}}`,
			`{"type":"track","userId":"u","event":"E","context":{"a":1}}`},
		{"NoBatchContextKeepsNull",
			`{"batch":[{"type":"track","userId":"u","event":"E","context":null}]}`,
			`{"type":"track","userId":"u","event":"E","context":null}`},
		{"Compacted",
			"{\"batch\":[ {\n \"type\" : \"track\", \"userId\":\"u\",\n\"event\":\"E\", \"properties\": { \"q\": \"a b\" } } ]}",
			`{"type":"track","userId":"u","event":"E","properties":{"q":"a b"}}`},
	}
	// A member name given twice, at any depth, makes the request malformed
	// JSON (the rule of POST /events), so a stored payload is never
	// ambiguous.
	for _, body := range []string{
		`{"batch":[{"type":"track","userId":"u","event":"A","event":"B"}]}`,
		`{"batch":[{"type":"track","userId":"u","event":"A","properties":{"x":{"k":1,"k":2}}}]}`,
	} {
		if _, err := segment.Decode([]byte(body), "batch", recv, segment.Options{}); cairn.ErrorCode(err) != cairn.EINVALID {
			t.Errorf("duplicate member name %s: err %v, want EINVALID", body, err)
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := segment.Decode([]byte(c.body), "batch", recv, segment.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(req.Messages) != 1 {
				t.Fatalf("messages %+v, rejected %+v", req.Messages, req.Rejected)
			}
			if got := string(req.Messages[0].Event.Payload); got != c.want {
				t.Fatalf("payload\n got %s\nwant %s", got, c.want)
			}
		})
	}
}

func TestDecodeRequestErrors(t *testing.T) {
	cases := []struct {
		name string
		call string
		body string
		code string
	}{
		{"ErrMalformedJSON", "batch", `{"batch":[`, cairn.EINVALID},
		{"ErrTrailingData", "track", `{"userId":"u","event":"E"} {}`, cairn.EINVALID},
		{"ErrNotObject", "batch", `[{"type":"track"}]`, cairn.EINVALID},
		{"ErrEmptyBody", "track", ``, cairn.EINVALID},
		{"ErrInvalidUTF8", "track", "{\"userId\":\"u\xff\",\"event\":\"E\"}", cairn.EINVALID},
		{"ErrNoBatchArray", "batch", `{"messages":[]}`, cairn.EINVALID},
		{"ErrBatchNotArray", "b", `{"batch":{"type":"track"}}`, cairn.EINVALID},
		{"ErrBatchContextNotObject", "batch", `{"batch":[],"context":"x"}`, cairn.EINVALID},
		{"ErrBatchSentAtGarbage", "batch", `{"batch":[],"sentAt":"now"}`, cairn.EINVALID},
		{"ErrWriteKeyNotString", "batch", `{"batch":[],"writeKey":1}`, cairn.EINVALID},
		{"ErrUnknownCall", "purchase", `{}`, cairn.EINVALID},
		{"ErrSingleCallTooLarge", "track", `{"userId":"u","event":"E","properties":{"p":"` + strings.Repeat("x", 32<<10) + `"}}`, cairn.ETOOLARGE},
		{"ErrBatchTooLarge", "batch", `{"batch":[{"type":"track","userId":"u","event":"E","properties":{"p":"` + strings.Repeat("x", 500<<10) + `"}}]}`, cairn.ETOOLARGE},
		{"ErrTooManyMessages", "batch", `{"batch":[` + strings.Repeat(`{},`, 2500) + `{}]}`, cairn.ETOOLARGE},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := segment.Decode([]byte(c.body), c.call, recv, segment.Options{})
			if cairn.ErrorCode(err) != c.code || req != nil {
				t.Fatalf("Decode = %+v, %v; want a %s error", req, err, c.code)
			}
			if cairn.ErrorMessage(err) == "" {
				t.Fatal("no message")
			}
		})
	}
}

// TestDecodeBatchPartial checks that bad messages are reported by index and
// messageId while the others are accepted, in order.
func TestDecodeBatchPartial(t *testing.T) {
	body := `{"writeKey":"wk","sentAt":"2026-11-25T20:00:00Z","batch":[
		{"type":"track","messageId":"m1","userId":"u","event":"A"},
		{"type":"track","messageId":"m2","event":"B"},
		42,
		{"type":"identify","messageId":"m4","anonymousId":"a","writeKey":"wk"},
		{"type":"alias","messageId":"m5","userId":"u"}]}`
	req, err := segment.Decode([]byte(body), "b", recv, segment.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if req.Call != "batch" || req.WriteKey != "wk" {
		t.Fatalf("call %q, write key %q", req.Call, req.WriteKey)
	}
	var ids []string
	for _, m := range req.Messages {
		ids = append(ids, fmt.Sprintf("%d:%s", m.Index, m.Event.EventID))
	}
	if got := strings.Join(ids, " "); got != "0:m1 3:m4" {
		t.Fatalf("accepted %s, want 0:m1 3:m4", got)
	}
	want := []segment.Rejection{{1, "m2", "no_user_anon_id"}, {2, "", "not_object"}, {4, "m5", "missing_previous_id"}}
	if fmt.Sprint(req.Rejected) != fmt.Sprint(want) {
		t.Fatalf("rejected %+v, want %+v", req.Rejected, want)
	}
	b, _ := json.Marshal(req.Rejected[1])
	if string(b) != `{"index":2,"reason":"not_object"}` {
		t.Fatalf("rejection JSON %s", b)
	}
}

func TestDecodeWriteKeys(t *testing.T) {
	cases := []struct {
		name, call, body, want string
	}{
		{"BatchLevel", "batch", `{"writeKey":"wk1","batch":[]}`, "wk1"},
		{"FirstMessage", "batch", `{"batch":[{"type":"page","userId":"u","writeKey":"wk2"}]}`, "wk2"},
		{"SingleCall", "page", `{"userId":"u","writeKey":"wk3"}`, "wk3"},
		{"None", "batch", `{"batch":[{"type":"page","userId":"u"}]}`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := segment.Decode([]byte(c.body), c.call, recv, segment.Options{})
			if err != nil || req.WriteKey != c.want {
				t.Fatalf("write key %v, %v; want %q", req, err, c.want)
			}
		})
	}
}

func TestEventIDDeterministic(t *testing.T) {
	for _, id := range []string{"a b", strings.Repeat("é", 80), "x/y", strings.Repeat("z", 129)} {
		got := segment.EventID(id)
		if got != segment.EventID(id) || cairn.ValidateEventID(got) != "" || !strings.HasPrefix(got, "m-") {
			t.Errorf("EventID(%q) = %q", id, got)
		}
	}
	if segment.EventID("a b") == segment.EventID("a c") {
		t.Error("different messageIds map to one eventId")
	}
	if segment.EventID("") != "" || segment.EventID("ok-1") != "ok-1" {
		t.Error("valid or empty messageIds must be kept")
	}
}

func TestTrackTypeRoundTrip(t *testing.T) {
	for _, name := range []string{"Order Completed", "$identify", "$$x", "$", "a$"} {
		typ := segment.TrackType(name)
		got, ok := segment.TrackName(typ)
		if !ok || got != name {
			t.Errorf("TrackName(TrackType(%q)) = %q, %v", name, got, ok)
		}
	}
	for _, typ := range []string{segment.TypeIdentify, segment.TypePage, segment.TypeScreen, segment.TypeGroup, segment.TypeAlias} {
		if _, ok := segment.TrackName(typ); ok {
			t.Errorf("reserved type %q taken for a track name", typ)
		}
	}
}

// TestDecodeBatchContextCountsTowardsMessageSize checks that a big batch
// context is not copied into every message.
func TestDecodeBatchContextCountsTowardsMessageSize(t *testing.T) {
	items := strings.Repeat(`{"type":"page","userId":"u"},`, 2000)
	body := `{"batch":[` + items + `{"type":"page","userId":"u"}],"context":{"big":"` + strings.Repeat("x", 33<<10) + `"}}`
	req, err := segment.Decode([]byte(body), "batch", recv, segment.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(req.Messages) != 0 || len(req.Rejected) != 2001 || req.Rejected[0].Reason != "too_large" {
		t.Fatalf("%d accepted, %d rejected (%+v)", len(req.Messages), len(req.Rejected), req.Rejected[:1])
	}
}

// TestDecodeUnstorablePayload: a message whose payload a store could not
// keep as sent (too deep, a number no float64 holds) is rejected with
// invalid_payload, as POST /events refuses it; the others are accepted.
func TestDecodeUnstorablePayload(t *testing.T) {
	deep := strings.Repeat(`{"d":`, 70) + `1` + strings.Repeat(`}`, 70)
	body := `{"batch":[
		{"type":"track","messageId":"ok","userId":"u","event":"A","properties":{"n":1.5,"big":9007199254740993}},
		{"type":"track","messageId":"huge","userId":"u","event":"A","properties":{"n":1e400}},
		{"type":"track","messageId":"digits","userId":"u","event":"A","properties":{"n":123456789012345678901234567890}},
		{"type":"track","messageId":"deep","userId":"u","event":"A","properties":` + deep + `},
		{"type":"identify","messageId":"ctx","userId":"u","context":{"x":1e999}}]}`
	req, err := segment.Decode([]byte(body), "b", recv, segment.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(req.Messages) != 1 || req.Messages[0].Event.EventID != "ok" {
		t.Errorf("accepted %+v, want only ok", req.Messages)
	}
	var got []string
	for _, r := range req.Rejected {
		got = append(got, r.MessageID+":"+r.Reason)
	}
	want := "huge:invalid_payload digits:invalid_payload deep:invalid_payload ctx:invalid_payload"
	if strings.Join(got, " ") != want {
		t.Errorf("rejected %v, want %s", got, want)
	}
}
