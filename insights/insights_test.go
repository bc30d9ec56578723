package insights_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/insights"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func ev(id, typ string, min int, payload string) cairn.Event {
	if payload == "" {
		payload = "{}"
	}
	return cairn.Event{EventID: id, Type: typ, OccurredAt: t0.Add(time.Duration(min) * time.Minute), Payload: json.RawMessage(payload)}
}

func f(v float64) *float64 { return &v }

func TestComputeFunnel(t *testing.T) {
	people := map[string][]cairn.Event{
		// Completes: view at 0, cart at 10, buy at 40.
		"ann": {ev("a3", "purchase", 40, ""), ev("a1", "page_view", 0, `{"url":"/pricing"}`), ev("a2", "add_to_cart", 10, "")},
		// The first view leads nowhere within the hour; the second start,
		// at 120, completes (cart at 150, buy at 170).
		"bob": {ev("b1", "page_view", 0, `{"url":"/pricing"}`), ev("b2", "add_to_cart", 70, ""),
			ev("b3", "page_view", 120, `{"url":"/pricing"}`), ev("b4", "add_to_cart", 150, ""), ev("b5", "purchase", 170, "")},
		// Cart before the view does not count; buy after the window.
		"cat": {ev("c0", "add_to_cart", -5, ""), ev("c1", "page_view", 0, `{"url":"/pricing"}`), ev("c2", "add_to_cart", 20, ""), ev("c3", "purchase", 61, "")},
		// Wrong url: not in the funnel.
		"dan": {ev("d1", "page_view", 0, `{"url":"/"}`), ev("d2", "add_to_cart", 1, "")},
		// Outside [from, to].
		"eve": {ev("e1", "page_view", -100, `{"url":"/pricing"}`)},
	}
	q := cairn.FunnelQuery{
		Steps:  []cairn.FunnelStep{{Type: "page_view", Where: map[string]string{"url": "/pricing"}}, {Type: "add_to_cart"}, {Type: "purchase"}},
		Within: time.Hour, From: t0.Add(-10 * time.Minute), To: t0.Add(5 * time.Hour),
	}
	got := insights.ComputeFunnel(q, people)
	want := &cairn.Funnel{Within: "1h", Steps: []cairn.FunnelStepResult{
		{Type: "page_view", Where: q.Steps[0].Where, Users: 3, ConversionFromPrevious: 1, ConversionFromFirst: 1, ExampleUsers: []string{"ann", "bob", "cat"}},
		// ann 600 s, bob 1800 s, cat 1200 s: median 1200.
		{Type: "add_to_cart", Users: 3, ConversionFromPrevious: 1, ConversionFromFirst: 1, MedianSecondsFromPrevious: f(1200), ExampleUsers: []string{"ann", "bob", "cat"}},
		// ann 1800 s, bob 1200 s: median 1500.
		{Type: "purchase", Users: 2, ConversionFromPrevious: 2.0 / 3, ConversionFromFirst: 2.0 / 3, MedianSecondsFromPrevious: f(1500), ExampleUsers: []string{"ann", "bob"}},
	}}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Errorf("funnel:\n got %s\nwant %s", g, w)
	}
}

func TestComputeFunnelRepeatedStep(t *testing.T) {
	people := map[string][]cairn.Event{
		"one": {ev("1", "page_view", 0, "")},
		"two": {ev("1", "page_view", 0, ""), ev("2", "page_view", 0, "")},
	}
	q := cairn.FunnelQuery{Steps: []cairn.FunnelStep{{Type: "page_view"}, {Type: "page_view"}}, Within: time.Minute, From: t0, To: t0}
	got := insights.ComputeFunnel(q, people)
	if got.Steps[0].Users != 2 || got.Steps[1].Users != 1 || *got.Steps[1].MedianSecondsFromPrevious != 0 {
		t.Errorf("a step of the same type needs a later event: got %+v", got.Steps)
	}
	if got.Steps[1].ConversionFromPrevious != 0.5 {
		t.Errorf("conversion = %v, want 0.5", got.Steps[1].ConversionFromPrevious)
	}
}

func TestComputeRetention(t *testing.T) {
	day := 24 * 60
	people := map[string][]cairn.Event{
		"a": {ev("a1", "session_start", 0, ""), ev("a2", "page_view", day, ""), ev("a3", "page_view", 2*day+5, "")},
		"b": {ev("b1", "page_view", 0, ""), ev("b2", "session_start", day, ""), ev("b3", "purchase", 2*day, "")},
		"c": {ev("c1", "session_start", day+1, "")},
		"d": {ev("d1", "page_view", 0, "")}, // never in a cohort
	}
	q := cairn.RetentionQuery{Cohort: "session_start", Return: "", From: t0, To: t0.Add(50 * time.Hour), Interval: cairn.IntervalDay}
	got := insights.ComputeRetention(q, people)
	d0 := cairn.IntervalDay.Truncate(t0)
	want := &cairn.Retention{Interval: cairn.IntervalDay, Cohort: "session_start", Return: "any", Cohorts: []cairn.RetentionCohort{
		{T: d0, Users: 1, Returned: []int64{1, 1, 1}},
		{T: d0.AddDate(0, 0, 1), Users: 2, Returned: []int64{2, 1}},
		{T: d0.AddDate(0, 0, 2), Users: 0, Returned: []int64{0}},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("retention:\n got %+v\nwant %+v", got, want)
	}
}

func TestComputeTop(t *testing.T) {
	events := []cairn.Event{
		ev("1", "page_view", 0, `{"url":"/b"}`), ev("2", "page_view", 1, `{"url":"/a"}`),
		ev("3", "page_view", 2, `{"url":"/b"}`), ev("4", "page_view", 3, `{"url":"/c"}`),
		ev("5", "search", 4, `{"url":"/c"}`), ev("6", "page_view", 5, `{}`),
		ev("7", "page_view", 500, `{"url":"/c"}`),
	}
	got := insights.ComputeTop(cairn.TopQuery{Type: "page_view", Field: "url", From: t0, To: t0.Add(time.Hour), Limit: 2}, events)
	want := &cairn.TopValues{Type: "page_view", Field: "url", Values: []cairn.TopValue{{Value: "/b", Count: 2}, {Value: "/a", Count: 1}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("top:\n got %+v\nwant %+v", got, want)
	}
}
