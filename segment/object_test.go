package segment

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzParseObject checks the object scanner against encoding/json: on any
// input it never panics; on a valid object it finds every member, with the
// last value of a repeated key, each one valid JSON.
func FuzzParseObject(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"b":[1,{"c":"}"}],"a":"x\"y"}`, ` { "k" : null } `, `{"a":1}x`, `[1,2]`, `{"a":`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fields, err := parseObject(data)
		items, aerr := parseArray(data)
		if !json.Valid(data) || !utf8.Valid(data) {
			// Only the absence of panics is checked. (encoding/json turns
			// invalid UTF-8 in a name into U+FFFD, so it is no oracle there;
			// Decode refuses such bodies before parsing objects.)
			return
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(data, &m) != nil || m == nil {
			if err == nil {
				t.Fatalf("parseObject accepted a non-object %q", data)
			}
		} else {
			if err != nil {
				t.Fatalf("parseObject(%q): %v", data, err)
			}
			if len(fields) != len(m) {
				t.Fatalf("%d fields, encoding/json found %d", len(fields), len(m))
			}
			for _, f := range fields {
				var a, b any
				if json.Unmarshal(f.value, &a) != nil || json.Unmarshal(m[f.key], &b) != nil {
					t.Fatalf("member %q: %q vs %q", f.key, f.value, m[f.key])
				}
			}
		}
		var arr []json.RawMessage
		if json.Unmarshal(data, &arr) == nil && arr != nil {
			if aerr != nil || len(items) != len(arr) {
				t.Fatalf("parseArray(%q) = %d items, %v; want %d", data, len(items), aerr, len(arr))
			}
		}
	})
}
