package bench

import (
	"strings"
	"testing"
)

func TestReadJourneyPage(t *testing.T) {
	ok := []struct {
		page   string
		events int
		next   string
	}{
		{`{"userId":"u","count":2,"events":[{"eventId":"a","payload":{"x":[1,"]"]}},{"eventId":"b"}],"nextCursor":"c1"}`, 2, "c1"},
		{`{"userId":"u","count":0,"events":[],"nextCursor":null}`, 0, ""},
		{` {"nextCursor":null,"events":[{}],"mergedIds":["a"]} ` + "\n", 1, ""},
	}
	for _, c := range ok {
		n, next, err := readJourneyPage([]byte(c.page))
		if err != nil || n != c.events || next != c.next {
			t.Errorf("readJourneyPage(%s) = %d, %q, %v; want %d, %q", c.page, n, next, err, c.events, c.next)
		}
	}
	bad := []string{
		``,
		`[]`,
		`{"events":[{}],"nextCursor":null`,
		`{"events":[{"a":}],"nextCursor":null}`,
		`{"events":[1],"nextCursor":null}`,
		`{"events":{},"nextCursor":null}`,
		`{"events":[],"nextCursor":5}`,
		`{"events":[],"nextCursor":""}`,
		`{"nextCursor":null}`,
		`{"events":[]} {}`,
		`{"events":[],"events":[]}`,
	}
	for _, page := range bad {
		if n, next, err := readJourneyPage([]byte(page)); err == nil {
			t.Errorf("readJourneyPage(%s) = %d, %q, nil; want an error", page, n, next)
		} else if strings.Contains(err.Error(), "panic") {
			t.Errorf("readJourneyPage(%s): %v", page, err)
		}
	}
}
