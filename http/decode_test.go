package http_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	cairnhttp "github.com/cairn-dev/cairn/http"
)

// The decoder tests below were the root package's DecodeEvent tests; they now
// run against DecodeEvents, the decoder production uses.

var decodeNow = time.Date(2025, 12, 15, 10, 30, 0, 123e6, time.UTC)

func decodeRules() cairn.EventRules { return cairn.NewEventRules(nil, 24*time.Hour) }

// decodeOne decodes a body holding one event object.
func decodeOne(t *testing.T, body string, rules cairn.EventRules) (cairn.Event, error) {
	t.Helper()
	evs, err := cairnhttp.DecodeEvents([]byte(body), decodeNow, rules)
	if err != nil {
		return cairn.Event{}, err
	}
	if len(evs) != 1 {
		t.Fatalf("DecodeEvents(%s) = %d events, want 1", body, len(evs))
	}
	return evs[0], nil
}

func TestDecodeEventsValid(t *testing.T) {
	cases := []struct {
		name  string
		input string
		check func(t *testing.T, e cairn.Event)
	}{
		{"Minimal", `{"userId":"u","sessionId":"s","type":"page_view"}`, func(t *testing.T, e cairn.Event) {
			if string(e.Payload) != "{}" || !e.OccurredAt.Equal(decodeNow.Truncate(time.Millisecond)) || !e.ReceivedAt.Equal(e.OccurredAt) || e.EventID != "" {
				t.Errorf("defaults wrong: %+v", e)
			}
		}},
		{"TrimsIDs", `{"userId":"  u1 ","sessionId":"\ts\n","type":"purchase"}`, func(t *testing.T, e cairn.Event) {
			if e.UserID != "u1" || e.SessionID != "s" {
				t.Errorf("not trimmed: %q %q", e.UserID, e.SessionID)
			}
		}},
		{"ISODate", `{"userId":"u","sessionId":"s","type":"search","occurredAt":"2025-12-15T10:30:00+02:00"}`, func(t *testing.T, e cairn.Event) {
			if want := time.Date(2025, 12, 15, 8, 30, 0, 0, time.UTC); !e.OccurredAt.Equal(want) || e.OccurredAt.Location() != time.UTC {
				t.Errorf("occurredAt = %v", e.OccurredAt)
			}
		}},
		{"FractionTruncatedToMillis", `{"userId":"u","sessionId":"s","type":"search","occurredAt":"2025-12-15T10:30:00.123456Z"}`, func(t *testing.T, e cairn.Event) {
			if e.OccurredAt.Nanosecond() != 123e6 {
				t.Errorf("occurredAt = %v", e.OccurredAt)
			}
		}},
		{"DateOnly", `{"userId":"u","sessionId":"s","type":"search","occurredAt":"2025-12-14"}`, func(t *testing.T, e cairn.Event) {
			if !e.OccurredAt.Equal(time.Date(2025, 12, 14, 0, 0, 0, 0, time.UTC)) {
				t.Errorf("occurredAt = %v", e.OccurredAt)
			}
		}},
		{"EpochMillis", `{"userId":"u","sessionId":"s","type":"search","occurredAt":1765794600000}`, func(t *testing.T, e cairn.Event) {
			if e.OccurredAt.UnixMilli() != 1765794600000 {
				t.Errorf("occurredAt = %v", e.OccurredAt)
			}
		}},
		{"ClientEventID", `{"userId":"u","sessionId":"s","type":"video_play","eventId":"evt_01:A-b.c"}`, func(t *testing.T, e cairn.Event) {
			if e.EventID != "evt_01:A-b.c" {
				t.Errorf("eventId = %q", e.EventID)
			}
		}},
		{"EscapedFieldName", `{"user\u0049d":"u","sessionId":"s","type":"page_view"}`, func(t *testing.T, e cairn.Event) {
			if e.UserID != "u" {
				t.Errorf("userId = %q", e.UserID)
			}
		}},
		{"UnknownFieldsIgnored", `{"userId":"u","sessionId":"s","type":"video_pause","extra":{"x":1},"receivedAt":"1999-01-01T00:00:00Z"}`, func(t *testing.T, e cairn.Event) {
			if !e.ReceivedAt.Equal(decodeNow.Truncate(time.Millisecond)) {
				t.Errorf("receivedAt must be the server's: %v", e.ReceivedAt)
			}
		}},
		{"PayloadCompacted", `{"userId":"u","sessionId":"s","type":"form_submit","payload":{ "a" : [1, 2] , "b":{"c":null}}}`, func(t *testing.T, e cairn.Event) {
			if string(e.Payload) != `{"a":[1,2],"b":{"c":null}}` {
				t.Errorf("payload = %s", e.Payload)
			}
		}},
		{"NullPayloadDefaults", `{"userId":"u","sessionId":"s","type":"add_to_cart","payload":null,"occurredAt":null,"eventId":null}`, func(t *testing.T, e cairn.Event) {
			if string(e.Payload) != "{}" || e.EventID != "" {
				t.Errorf("got %+v", e)
			}
		}},
		{"FutureWithinLimit", `{"userId":"u","sessionId":"s","type":"remove_from_cart","occurredAt":"2025-12-16T10:00:00Z"}`, func(t *testing.T, e cairn.Event) {}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := decodeOne(t, tc.input, decodeRules())
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			tc.check(t, e)
		})
	}
}

// TestDecodeEventsInvalid puts each invalid event fourth in a batch (index
// 3) after three valid ones and checks which fields the 400 names.
func TestDecodeEventsInvalid(t *testing.T) {
	long := strings.Repeat("x", 257)
	const valid = `{"userId":"u","sessionId":"s","type":"page_view"},`
	cases := []struct {
		name   string
		input  string
		fields []string // nil: the whole body is malformed (no details)
	}{
		{"NotAnObject", `1`, []string{""}},
		{"Malformed", `{"userId":`, nil},
		{"FieldNamesExact", `{"UserID":"u","SessionId":"s","TYPE":"page_view"}`, []string{"userId", "sessionId", "type"}},
		{"DuplicateName", `{"userId":"u","userId":"v","sessionId":"s","type":"page_view"}`, nil},
		{"InvalidUTF8", "{\"userId\":\"\xff\",\"sessionId\":\"s\",\"type\":\"page_view\"}", nil},
		{"MissingAll", `{}`, []string{"userId", "sessionId", "type"}},
		{"EmptyUserID", `{"userId":"  ","sessionId":"s","type":"page_view"}`, []string{"userId"}},
		{"UserIDNotString", `{"userId":12,"sessionId":"s","type":"page_view"}`, []string{"userId"}},
		{"UserIDTooLong", `{"userId":"` + long + `","sessionId":"s","type":"page_view"}`, []string{"userId"}},
		{"SessionIDNull", `{"userId":"u","sessionId":null,"type":"page_view"}`, []string{"sessionId"}},
		{"UnknownType", `{"userId":"u","sessionId":"s","type":"PAGE_VIEW"}`, []string{"type"}},
		{"TypeNotString", `{"userId":"u","sessionId":"s","type":["page_view"]}`, []string{"type"}},
		{"PayloadArray", `{"userId":"u","sessionId":"s","type":"page_view","payload":[1]}`, []string{"payload"}},
		{"PayloadString", `{"userId":"u","sessionId":"s","type":"page_view","payload":"x"}`, []string{"payload"}},
		// Payloads a store could not keep as sent (issue 15): refused in
		// both store modes, naming the field.
		{"PayloadNumberOverflow", `{"userId":"u","sessionId":"s","type":"page_view","payload":{"v":1e400}}`, []string{"payload.v"}},
		{"Payload30DigitInteger", `{"userId":"u","sessionId":"s","type":"page_view","payload":{"a":[{"id":123456789012345678901234567890}]}}`, []string{"payload.a[0].id"}},
		{"PayloadTooDeep", `{"userId":"u","sessionId":"s","type":"page_view","payload":` + strings.Repeat(`{"d":`, 64) + `{}` + strings.Repeat(`}`, 64) + `}`, []string{"payload" + strings.Repeat(".d", 64)}},
		{"BadDate", `{"userId":"u","sessionId":"s","type":"page_view","occurredAt":"yesterday"}`, []string{"occurredAt"}},
		{"DateBool", `{"userId":"u","sessionId":"s","type":"page_view","occurredAt":true}`, []string{"occurredAt"}},
		{"EpochFraction", `{"userId":"u","sessionId":"s","type":"page_view","occurredAt":1.5}`, []string{"occurredAt"}},
		{"EpochNegative", `{"userId":"u","sessionId":"s","type":"page_view","occurredAt":-1}`, []string{"occurredAt"}},
		{"TooFarInFuture", `{"userId":"u","sessionId":"s","type":"page_view","occurredAt":"2025-12-17T10:00:00Z"}`, []string{"occurredAt"}},
		{"Before1970", `{"userId":"u","sessionId":"s","type":"page_view","occurredAt":"1969-12-31T23:59:59Z"}`, []string{"occurredAt"}},
		{"EventIDBadChars", `{"userId":"u","sessionId":"s","type":"page_view","eventId":"a b"}`, []string{"eventId"}},
		{"EventIDEmpty", `{"userId":"u","sessionId":"s","type":"page_view","eventId":""}`, []string{"eventId"}},
		{"EventIDTooLong", `{"userId":"u","sessionId":"s","type":"page_view","eventId":"` + strings.Repeat("a", 129) + `"}`, []string{"eventId"}},
		{"EventIDNumber", `{"userId":"u","sessionId":"s","type":"page_view","eventId":7}`, []string{"eventId"}},
		{"Several", `{"userId":"","sessionId":"s","type":"x","payload":1}`, []string{"userId", "type", "payload"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := "[" + strings.Repeat(valid, 3) + tc.input + "]"
			evs, err := cairnhttp.DecodeEvents([]byte(body), decodeNow, decodeRules())
			var ae *cairn.Error
			if !errors.As(err, &ae) || ae.Code != cairn.EINVALID || evs != nil {
				t.Fatalf("DecodeEvents = %d events, %v; want EINVALID and nothing accepted", len(evs), err)
			}
			var got []string
			for _, e := range ae.Details {
				got = append(got, e.Field)
				if e.Index != 3 || e.Message == "" {
					t.Errorf("bad FieldError %+v", e)
				}
			}
			if !reflect.DeepEqual(got, tc.fields) {
				t.Fatalf("fields = %q, want %q (error %v, details %+v)", got, tc.fields, err, ae.Details)
			}
		})
	}
}

func TestDecodeEventsCustomTypes(t *testing.T) {
	r := cairn.NewEventRules([]string{"signup"}, time.Hour)
	if _, err := decodeOne(t, `{"userId":"u","sessionId":"s","type":"signup"}`, r); err != nil {
		t.Fatalf("custom type refused: %v", err)
	}
	if _, err := decodeOne(t, `{"userId":"u","sessionId":"s","type":"page_view"}`, r); cairn.ErrorCode(err) != cairn.EINVALID {
		t.Fatalf("type outside the custom list: %v, want EINVALID", err)
	}
}

// checkAccepted asserts what every accepted event must satisfy: normalized,
// and unchanged by the journey JSON encoding and the spool's binary encoding.
func checkAccepted(t *testing.T, e cairn.Event) {
	t.Helper()
	if e.UserID == "" || e.SessionID == "" || e.Type == "" || len(e.Payload) == 0 || e.Payload[0] != '{' {
		t.Fatalf("accepted event not normalized: %+v", e)
	}
	if !json.Valid(e.Payload) {
		t.Fatalf("payload not valid JSON: %q", e.Payload)
	}
	if e.EventID == "" {
		e.EventID = "assigned-by-server"
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var back cairn.Event
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("journey JSON round trip of %s: %v", b, err)
	}
	if back.UserID != e.UserID || back.SessionID != e.SessionID || !back.OccurredAt.Equal(e.OccurredAt) || string(back.Payload) != string(e.Payload) {
		t.Fatalf("journey JSON round trip changed the event: %+v != %+v", back, e)
	}
	got, err := cairn.DecodeBatch(nil, cairn.AppendBatch(nil, []cairn.Event{e}))
	if err != nil || len(got) != 1 || got[0].UserID != e.UserID || string(got[0].Payload) != string(e.Payload) || !got[0].OccurredAt.Equal(e.OccurredAt) {
		t.Fatalf("binary round trip: %v %+v", err, got)
	}
}

// BenchmarkDecodeEventsSingle decodes and validates one-event bodies (the
// former root BenchmarkDecodeEvent cases).
func BenchmarkDecodeEventsSingle(b *testing.B) {
	rules := decodeRules()
	now := time.Now()
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"PageView", []byte(`{"eventId":"lg1a2b3c4d-k3-0","userId":"user-4711","sessionId":"user-4711-s2","type":"page_view",` +
			`"occurredAt":1764000000000,"payload":{"url":"/products/laptop-pro-14","referrer":"https://www.google.com/","loadTimeMs":412}}`)},
		{"ISOTimeNoID", []byte(`{"userId":"user-1","sessionId":"s-1","type":"search","occurredAt":"2025-12-15T10:30:00.123Z","payload":{"query":"wireless headphones","results":42}}`)},
		{"Invalid", []byte(`{"userId":"","sessionId":3,"type":"nope","occurredAt":"yesterday"}`)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.data)))
			b.ReportAllocs()
			for b.Loop() {
				_, _ = cairnhttp.DecodeEvents(tc.data, now, rules)
			}
		})
	}
}
