package cairn

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on sources.
const (
	// MaxSourceNameLen is the longest source name, in characters.
	MaxSourceNameLen = 100
	// WriteKeyBytes is how many random bytes NewWriteKey draws (192 bits).
	WriteKeyBytes = 24
	// MaxWriteKeyLen is the longest write key a store accepts.
	MaxWriteKeyLen = 128
)

// Source is where events come from (a website, a backend service). Its
// WriteKey identifies it to the tracking API. A write key ships in page
// code, so it is not a secret from browsers: it grants only "send events
// as this source", nothing else. Times have millisecond precision (UTC).
type Source struct {
	// ID is assigned by SourceStore.CreateSource: "src_" and 32 characters
	// of [A-Za-z0-9].
	ID string
	// Name is 1–MaxSourceNameLen characters, trimmed of surrounding space.
	Name string
	// WriteKey is unique among sources; see NewWriteKey.
	WriteKey string
	// Enabled sources accept events; a disabled one is refused with 401.
	Enabled bool
	// RateLimit bounds how fast the source may send events.
	RateLimit RateLimit
	// CreatedAt and UpdatedAt are set by the caller; the store keeps them.
	CreatedAt time.Time
	UpdatedAt time.Time
}

// RateLimit is a token bucket: EventsPerSecond tokens are added per second,
// up to Burst. EventsPerSecond 0 means unlimited. Burst 0 means one second's
// worth of events (EventsPerSecond).
type RateLimit struct {
	// EventsPerSecond is the sustained rate; 0 means unlimited.
	EventsPerSecond int
	// Burst is the bucket size; 0 means EventsPerSecond.
	Burst int
}

// Unlimited reports whether the limit lets every event through.
func (r RateLimit) Unlimited() bool { return r.EventsPerSecond == 0 }

// Validate trims the source's name and checks its fields: the name must be
// 1–MaxSourceNameLen characters of valid UTF-8, the write key at most
// MaxWriteKeyLen bytes of printable ASCII without spaces (it travels in
// HTTP Basic auth), and the rate limit fields at least 0. It returns an
// EINVALID error naming the first problem. An empty ID or WriteKey is
// accepted: CreateSource assigns them.
func (s *Source) Validate() error {
	s.Name = strings.TrimSpace(s.Name)
	switch n := utf8.RuneCountInString(s.Name); {
	case !utf8.ValidString(s.Name):
		return Errorf(EINVALID, "source name must be valid UTF-8")
	case n == 0:
		return Errorf(EINVALID, "source name is required")
	case n > MaxSourceNameLen:
		return Errorf(EINVALID, "source name must be at most %d characters", MaxSourceNameLen)
	}
	if len(s.WriteKey) > MaxWriteKeyLen {
		return Errorf(EINVALID, "write key must be at most %d characters", MaxWriteKeyLen)
	}
	for i := 0; i < len(s.WriteKey); i++ {
		if c := s.WriteKey[i]; c <= ' ' || c >= 0x7F || c == ':' {
			return Errorf(EINVALID, "write key may contain only printable ASCII other than space and ':'")
		}
	}
	if s.RateLimit.EventsPerSecond < 0 {
		return Errorf(EINVALID, "rateLimit.eventsPerSecond must be at least 0 (0 = unlimited)")
	}
	if s.RateLimit.Burst < 0 {
		return Errorf(EINVALID, "rateLimit.burst must be at least 0")
	}
	return nil
}

// NewWriteKey returns a new random write key: WriteKeyBytes bytes from
// crypto/rand in URL-safe base64 without padding (32 characters).
func NewWriteKey() string {
	b := make([]byte, WriteKeyBytes)
	rand.Read(b) // never returns an error (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// NewSourceID returns a new source id: "src_" and NewToken().
func NewSourceID() string { return "src_" + NewToken() }

// SourceStore keeps sources. Every implementation must pass the
// conformance suite in package storetest.
type SourceStore interface {
	// CreateSource validates src (see Source.Validate), assigns src.ID, and
	// src.WriteKey when it is empty (NewWriteKey), and stores it. Times are
	// stored with millisecond precision. Returns EINVALID for an invalid
	// source, ECONFLICT when another source has the same write key,
	// EUNAVAILABLE when the store cannot be reached.
	CreateSource(ctx context.Context, src *Source) error

	// Source returns the source with that id. Returns ENOTFOUND when there
	// is none, EUNAVAILABLE when the store cannot be reached.
	Source(ctx context.Context, id string) (*Source, error)

	// SourceByWriteKey returns the source with that write key, enabled or
	// not. Returns ENOTFOUND when there is none (including an empty key),
	// EUNAVAILABLE when the store cannot be reached.
	SourceByWriteKey(ctx context.Context, writeKey string) (*Source, error)

	// ListSources returns every source, oldest first (createdAt ascending,
	// ties by id ascending). Returns EUNAVAILABLE when the store cannot be
	// reached.
	ListSources(ctx context.Context) ([]Source, error)

	// UpdateSource replaces the stored source with id src.ID by src (name,
	// write key, enabled, rate limit, updatedAt; createdAt is kept) after
	// validating it. Returns EINVALID for an invalid source or an empty
	// write key, ENOTFOUND when
	// there is no source with that id, ECONFLICT when another source has
	// the new write key, EUNAVAILABLE when the store cannot be reached.
	UpdateSource(ctx context.Context, src *Source) error

	// DeleteSource removes the source with that id. Returns ENOTFOUND when
	// there is none, EUNAVAILABLE when the store cannot be reached.
	DeleteSource(ctx context.Context, id string) error
}
