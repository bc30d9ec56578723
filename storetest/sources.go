package storetest

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
)

// RunSourceStore runs the conformance suite for cairn.SourceStore. open must
// return a new, empty store for each call and arrange its cleanup.
func RunSourceStore(t *testing.T, open func(t *testing.T) cairn.SourceStore) {
	t.Run("CreateAndFind", func(t *testing.T) { testCreateAndFindSource(t, open(t)) })
	t.Run("ErrInvalid", func(t *testing.T) { testInvalidSource(t, open(t)) })
	t.Run("ErrDuplicateWriteKey", func(t *testing.T) { testDuplicateWriteKey(t, open(t)) })
	t.Run("ConcurrentSameWriteKey", func(t *testing.T) { testConcurrentSameWriteKey(t, open(t)) })
	t.Run("ErrUnknownSource", func(t *testing.T) { testUnknownSource(t, open(t)) })
	t.Run("List", func(t *testing.T) { testListSources(t, open(t)) })
	t.Run("Update", func(t *testing.T) { testUpdateSource(t, open(t)) })
	t.Run("Delete", func(t *testing.T) { testDeleteSource(t, open(t)) })
}

// sourceTime is a fixed instant for the suite, with sub-millisecond digits
// that stores drop.
var sourceTime = time.Date(2026, 11, 25, 18, 59, 35, 915_123_456, time.UTC)

func newSource(name string, at time.Time) *cairn.Source {
	return &cairn.Source{Name: name, Enabled: true, RateLimit: cairn.RateLimit{EventsPerSecond: 1000, Burst: 5000},
		CreatedAt: at, UpdatedAt: at}
}

func mustCreateSource(t *testing.T, s cairn.SourceStore, src *cairn.Source) *cairn.Source {
	t.Helper()
	if err := s.CreateSource(t.Context(), src); err != nil {
		t.Fatalf("CreateSource(%q): %v", src.Name, err)
	}
	return src
}

func equalSource(a, b *cairn.Source) bool {
	return a.ID == b.ID && a.Name == b.Name && a.WriteKey == b.WriteKey && a.Enabled == b.Enabled &&
		a.RateLimit == b.RateLimit && a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt)
}

func wantSource(t *testing.T, what string, got *cairn.Source, err error, want *cairn.Source) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	w := *want
	w.CreatedAt, w.UpdatedAt = w.CreatedAt.Truncate(time.Millisecond), w.UpdatedAt.Truncate(time.Millisecond)
	if !equalSource(got, &w) {
		t.Fatalf("%s = %+v, want %+v", what, got, w)
	}
	if got.CreatedAt.Location() != time.UTC || got.UpdatedAt.Location() != time.UTC {
		t.Fatalf("%s: times not in UTC: %v %v", what, got.CreatedAt, got.UpdatedAt)
	}
}

func testCreateAndFindSource(t *testing.T, s cairn.SourceStore) {
	ctx := t.Context()
	src := mustCreateSource(t, s, newSource("  web  ", sourceTime))
	if src.ID == "" || len(src.WriteKey) < 22 {
		t.Fatalf("id %q / write key %q not assigned", src.ID, src.WriteKey)
	}
	if src.Name != "web" {
		t.Fatalf("name %q, want it trimmed", src.Name)
	}
	got, err := s.Source(ctx, src.ID)
	wantSource(t, "Source", got, err, src)
	got, err = s.SourceByWriteKey(ctx, src.WriteKey)
	wantSource(t, "SourceByWriteKey", got, err, src)

	// An explicit write key is kept; a disabled source is still found.
	other := newSource("backend", sourceTime)
	other.WriteKey, other.Enabled = "wk_test_123", false
	other.RateLimit = cairn.RateLimit{}
	mustCreateSource(t, s, other)
	if other.ID == src.ID {
		t.Fatalf("two sources share id %q", src.ID)
	}
	got, err = s.SourceByWriteKey(ctx, "wk_test_123")
	wantSource(t, "SourceByWriteKey(explicit)", got, err, other)
}

func testInvalidSource(t *testing.T, s cairn.SourceStore) {
	for name, src := range map[string]*cairn.Source{
		"EmptyName":    newSource(" ", sourceTime),
		"LongName":     newSource(fmt.Sprintf("%0101d", 0), sourceTime),
		"NegativeRate": {Name: "web", RateLimit: cairn.RateLimit{EventsPerSecond: -5}},
		"BadWriteKey":  {Name: "web", WriteKey: "has space"},
	} {
		wantCode(t, "CreateSource "+name, s.CreateSource(t.Context(), src), cairn.EINVALID)
	}
	list, err := s.ListSources(t.Context())
	if err != nil || len(list) != 0 {
		t.Fatalf("after invalid creates: %d sources, %v; want none", len(list), err)
	}
}

func testDuplicateWriteKey(t *testing.T, s cairn.SourceStore) {
	first := newSource("web", sourceTime)
	first.WriteKey = "wk_dup"
	mustCreateSource(t, s, first)
	second := newSource("impostor", sourceTime.Add(time.Hour))
	second.WriteKey = "wk_dup"
	wantCode(t, "CreateSource duplicate key", s.CreateSource(t.Context(), second), cairn.ECONFLICT)
	got, err := s.SourceByWriteKey(t.Context(), "wk_dup")
	wantSource(t, "after duplicate", got, err, first)
	list, err := s.ListSources(t.Context())
	if err != nil || len(list) != 1 {
		t.Fatalf("after duplicate: %d sources, %v; want 1", len(list), err)
	}
}

func testConcurrentSameWriteKey(t *testing.T, s cairn.SourceStore) {
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src := newSource(fmt.Sprintf("racer %d", i), sourceTime)
			src.WriteKey = "wk_race"
			errs[i] = s.CreateSource(context.WithoutCancel(t.Context()), src)
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else {
			wantCode(t, "concurrent CreateSource", err, cairn.ECONFLICT)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of %d concurrent creates with one write key succeeded, want 1", ok, n)
	}
}

func testUnknownSource(t *testing.T, s cairn.SourceStore) {
	ctx := t.Context()
	src := mustCreateSource(t, s, newSource("web", sourceTime))
	for _, id := range []string{"src_unknownunknownunknownunknown12", "0123456789abcdef01234567", "not an id", ""} {
		_, err := s.Source(ctx, id)
		wantCode(t, fmt.Sprintf("Source(%q)", id), err, cairn.ENOTFOUND)
		u := newSource("renamed", sourceTime)
		u.ID, u.WriteKey = id, "wk_other"
		wantCode(t, fmt.Sprintf("UpdateSource(%q)", id), s.UpdateSource(ctx, u), cairn.ENOTFOUND)
		wantCode(t, fmt.Sprintf("DeleteSource(%q)", id), s.DeleteSource(ctx, id), cairn.ENOTFOUND)
	}
	for _, key := range []string{"", "wk_unknown", src.WriteKey + "x"} {
		_, err := s.SourceByWriteKey(ctx, key)
		wantCode(t, fmt.Sprintf("SourceByWriteKey(%q)", key), err, cairn.ENOTFOUND)
	}
	got, err := s.Source(ctx, src.ID)
	wantSource(t, "untouched source", got, err, src)
}

func testListSources(t *testing.T, s cairn.SourceStore) {
	list, err := s.ListSources(t.Context())
	if err != nil || len(list) != 0 {
		t.Fatalf("empty store: %d sources, %v", len(list), err)
	}
	// Created out of order, two sharing a createdAt: listed by createdAt,
	// then id.
	var want []*cairn.Source
	for i, offset := range []time.Duration{3, 1, 5, 1, 2} {
		want = append(want, mustCreateSource(t, s, newSource(fmt.Sprintf("source %d", i), sourceTime.Add(offset*time.Minute))))
	}
	sortSources(want)
	list, err = s.ListSources(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(want) {
		t.Fatalf("listed %d sources, want %d", len(list), len(want))
	}
	for i := range list {
		wantSource(t, fmt.Sprintf("ListSources[%d]", i), &list[i], nil, want[i])
	}
}

func sortSources(srcs []*cairn.Source) {
	sort.Slice(srcs, func(i, j int) bool {
		a, b := srcs[i], srcs[j]
		ta, tb := a.CreatedAt.Truncate(time.Millisecond), b.CreatedAt.Truncate(time.Millisecond)
		if !ta.Equal(tb) {
			return ta.Before(tb)
		}
		return a.ID < b.ID
	})
}

func testUpdateSource(t *testing.T, s cairn.SourceStore) {
	ctx := t.Context()
	src := mustCreateSource(t, s, newSource("web", sourceTime))
	other := mustCreateSource(t, s, newSource("backend", sourceTime))
	oldKey := src.WriteKey

	u := *src
	u.Name, u.Enabled = "  website  ", false
	u.RateLimit = cairn.RateLimit{EventsPerSecond: 10, Burst: 20}
	u.UpdatedAt = sourceTime.Add(time.Hour)
	u.CreatedAt = sourceTime.Add(-time.Hour) // ignored: createdAt is kept
	if err := s.UpdateSource(ctx, &u); err != nil {
		t.Fatalf("UpdateSource: %v", err)
	}
	want := u
	want.Name, want.CreatedAt = "website", src.CreatedAt
	got, err := s.Source(ctx, src.ID)
	wantSource(t, "after update", got, err, &want)

	// Rotating the write key frees the old one.
	u.WriteKey = cairn.NewWriteKey()
	if err := s.UpdateSource(ctx, &u); err != nil {
		t.Fatalf("UpdateSource(new key): %v", err)
	}
	if _, err := s.SourceByWriteKey(ctx, oldKey); cairn.ErrorCode(err) != cairn.ENOTFOUND {
		t.Fatalf("old write key still finds a source: %v", err)
	}
	want.WriteKey = u.WriteKey
	got, err = s.SourceByWriteKey(ctx, u.WriteKey)
	wantSource(t, "by rotated key", got, err, &want)

	// Taking another source's key, an empty key or an invalid name fails
	// and changes nothing.
	bad := u
	bad.WriteKey = other.WriteKey
	wantCode(t, "UpdateSource(other's key)", s.UpdateSource(ctx, &bad), cairn.ECONFLICT)
	bad.WriteKey = ""
	wantCode(t, "UpdateSource(empty key)", s.UpdateSource(ctx, &bad), cairn.EINVALID)
	bad.WriteKey, bad.Name = u.WriteKey, ""
	wantCode(t, "UpdateSource(empty name)", s.UpdateSource(ctx, &bad), cairn.EINVALID)
	got, err = s.Source(ctx, src.ID)
	wantSource(t, "after failed updates", got, err, &want)
	got, err = s.SourceByWriteKey(ctx, other.WriteKey)
	wantSource(t, "other source", got, err, other)
}

func testDeleteSource(t *testing.T, s cairn.SourceStore) {
	ctx := t.Context()
	src := newSource("web", sourceTime)
	src.WriteKey = "wk_reuse"
	mustCreateSource(t, s, src)
	keep := mustCreateSource(t, s, newSource("backend", sourceTime))
	if err := s.DeleteSource(ctx, src.ID); err != nil {
		t.Fatalf("DeleteSource: %v", err)
	}
	_, err := s.Source(ctx, src.ID)
	wantCode(t, "Source after delete", err, cairn.ENOTFOUND)
	_, err = s.SourceByWriteKey(ctx, "wk_reuse")
	wantCode(t, "SourceByWriteKey after delete", err, cairn.ENOTFOUND)
	wantCode(t, "DeleteSource twice", s.DeleteSource(ctx, src.ID), cairn.ENOTFOUND)
	// The write key is free again.
	again := newSource("web again", sourceTime)
	again.WriteKey = "wk_reuse"
	mustCreateSource(t, s, again)
	list, err := s.ListSources(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("after delete and re-create: %d sources, %v; want 2", len(list), err)
	}
	got, err := s.Source(ctx, keep.ID)
	wantSource(t, "kept source", got, err, keep)
}
