package cairn_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn"
)

func TestSourceValidate(t *testing.T) {
	cases := []struct {
		name     string
		src      cairn.Source
		wantErr  string // substring of the message; "" = valid
		wantName string
	}{
		{"OK", cairn.Source{Name: "web", RateLimit: cairn.RateLimit{EventsPerSecond: 1000, Burst: 5000}}, "", "web"},
		{"Trimmed", cairn.Source{Name: "  web  "}, "", "web"},
		{"MaxLength", cairn.Source{Name: strings.Repeat("é", 100)}, "", strings.Repeat("é", 100)},
		{"ExplicitWriteKey", cairn.Source{Name: "web", WriteKey: "wk_test_123"}, "", "web"},
		{"ErrEmptyName", cairn.Source{Name: " \t"}, "name is required", ""},
		{"ErrLongName", cairn.Source{Name: strings.Repeat("a", 101)}, "at most 100", ""},
		{"ErrBadUTF8", cairn.Source{Name: "a\xff"}, "UTF-8", ""},
		{"ErrNegativeRate", cairn.Source{Name: "web", RateLimit: cairn.RateLimit{EventsPerSecond: -1}}, "eventsPerSecond", ""},
		{"ErrNegativeBurst", cairn.Source{Name: "web", RateLimit: cairn.RateLimit{Burst: -1}}, "burst", ""},
		{"ErrWriteKeySpace", cairn.Source{Name: "web", WriteKey: "a b"}, "write key", ""},
		{"ErrWriteKeyColon", cairn.Source{Name: "web", WriteKey: "a:b"}, "write key", ""},
		{"ErrWriteKeyLong", cairn.Source{Name: "web", WriteKey: strings.Repeat("k", 129)}, "write key", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.src.Validate()
			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				if c.src.Name != c.wantName {
					t.Fatalf("name = %q, want %q", c.src.Name, c.wantName)
				}
				return
			}
			if cairn.ErrorCode(err) != cairn.EINVALID || !strings.Contains(cairn.ErrorMessage(err), c.wantErr) {
				t.Fatalf("Validate = %v, want EINVALID containing %q", err, c.wantErr)
			}
		})
	}
}

func TestNewWriteKey(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		k := cairn.NewWriteKey()
		raw, err := base64.RawURLEncoding.DecodeString(k)
		if err != nil || len(raw) < 16 {
			t.Fatalf("write key %q: %d bytes, %v; want ≥ 16 bytes of URL-safe base64", k, len(raw), err)
		}
		if strings.ContainsAny(k, "=+/") {
			t.Fatalf("write key %q is not URL-safe unpadded base64", k)
		}
		if seen[k] {
			t.Fatalf("write key %q repeated", k)
		}
		seen[k] = true
		src := cairn.Source{Name: "web", WriteKey: k}
		if err := src.Validate(); err != nil {
			t.Fatalf("generated key %q invalid: %v", k, err)
		}
	}
	if id := cairn.NewSourceID(); !strings.HasPrefix(id, "src_") || len(id) != 36 {
		t.Fatalf("NewSourceID = %q", id)
	}
}

func TestRateLimitUnlimited(t *testing.T) {
	if !(cairn.RateLimit{}).Unlimited() || (cairn.RateLimit{EventsPerSecond: 1}).Unlimited() {
		t.Fatal("Unlimited wrong")
	}
}
