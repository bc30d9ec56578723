package pebble

import (
	"context"
	"encoding/binary"
	"errors"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cockroachdb/pebble/v2"
)

// Sources live under keys starting with 'S':
//
//	'S' 'i' sourceId                          → source (JSON)
//	'S' 'k' writeKey                          → sourceId (unique write key index)
//	'S' 'c' be64(createdAtMs^1<<63) sourceId  → "" (sources oldest first)
//
// Writes hold writeMu, so the write-key uniqueness check and the write are
// atomic, and are committed with pebble.Sync.

const prefixSource = 'S'

var _ cairn.SourceStore = (*Store)(nil)

func sourceKey(kind byte, part string) []byte {
	return append([]byte{prefixSource, kind}, part...)
}

func sourceCreatedKey(at time.Time, id string) []byte {
	k := binary.BigEndian.AppendUint64([]byte{prefixSource, 'c'}, uint64(at.UnixMilli())^1<<63)
	return append(k, id...)
}

type sourceRecord struct {
	ID              string `json:"id"`
	Name            string `json:"name"`
	WriteKey        string `json:"writeKey"`
	Enabled         bool   `json:"enabled"`
	EventsPerSecond int    `json:"eventsPerSecond"`
	Burst           int    `json:"burst"`
	CreatedAt       int64  `json:"createdAt"`
	UpdatedAt       int64  `json:"updatedAt"`
}

func (r *sourceRecord) source() *cairn.Source {
	return &cairn.Source{ID: r.ID, Name: r.Name, WriteKey: r.WriteKey, Enabled: r.Enabled,
		RateLimit: cairn.RateLimit{EventsPerSecond: r.EventsPerSecond, Burst: r.Burst},
		CreatedAt: fromMS(r.CreatedAt), UpdatedAt: fromMS(r.UpdatedAt)}
}

func sourceRecordOf(s *cairn.Source) *sourceRecord {
	return &sourceRecord{ID: s.ID, Name: s.Name, WriteKey: s.WriteKey, Enabled: s.Enabled,
		EventsPerSecond: s.RateLimit.EventsPerSecond, Burst: s.RateLimit.Burst,
		CreatedAt: ms(s.CreatedAt), UpdatedAt: ms(s.UpdatedAt)}
}

// CreateSource stores a new source. See cairn.SourceStore.
func (s *Store) CreateSource(ctx context.Context, src *cairn.Source) error {
	v := *src
	if err := v.Validate(); err != nil {
		return err
	}
	if v.WriteKey == "" {
		v.WriteKey = cairn.NewWriteKey()
	}
	v.ID = cairn.NewSourceID()
	v.CreatedAt, v.UpdatedAt = fromMS(ms(v.CreatedAt)), fromMS(ms(v.UpdatedAt))
	if err := s.checkOpen(); err != nil {
		return err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	keyKey := sourceKey('k', v.WriteKey)
	if taken, err := s.exists(keyKey); err != nil {
		return err
	} else if taken {
		return cairn.Errorf(cairn.ECONFLICT, "a source with this write key exists")
	}
	b := s.db.NewBatch()
	defer b.Close() //nolint:errcheck // Batch.Close only releases memory; it fails only when called twice
	err := setJSON(b, sourceKey('i', v.ID), sourceRecordOf(&v))
	if err == nil {
		err = b.Set(keyKey, []byte(v.ID), nil)
	}
	if err == nil {
		err = b.Set(sourceCreatedKey(v.CreatedAt, v.ID), nil, nil)
	}
	if err == nil {
		err = b.Commit(pebble.Sync)
	}
	if err != nil {
		return internal("create source", err)
	}
	*src = v
	return nil
}

// Source returns a source by id. See cairn.SourceStore.
func (s *Store) Source(ctx context.Context, id string) (*cairn.Source, error) {
	if id == "" {
		return nil, notFound("source")
	}
	var r sourceRecord
	if err := s.getJSON(sourceKey('i', id), &r, "source"); err != nil {
		return nil, err
	}
	return r.source(), nil
}

// SourceByWriteKey returns the source with that write key. See
// cairn.SourceStore.
func (s *Store) SourceByWriteKey(ctx context.Context, writeKey string) (*cairn.Source, error) {
	if writeKey == "" {
		return nil, notFound("source")
	}
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	id, closer, err := s.db.Get(sourceKey('k', writeKey))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, notFound("source")
	} else if err != nil {
		return nil, internal("read write key index", err)
	}
	sid := string(id)
	closer.Close() //nolint:errcheck // the closer releases the value buffer of a successful Get; it has no error to report
	return s.Source(ctx, sid)
}

// ListSources returns every source, oldest first. See cairn.SourceStore.
func (s *Store) ListSources(ctx context.Context) ([]cairn.Source, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	prefix := []byte{prefixSource, 'c'}
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, internal("list sources", err)
	}
	defer it.Close() //nolint:errcheck // the scan result is checked with it.Error(); Close only releases the finished scan
	list := []cairn.Source{}
	for ok := it.First(); ok; ok = it.Next() {
		src, err := s.Source(ctx, string(it.Key()[len(prefix)+8:]))
		if err != nil {
			return nil, err
		}
		list = append(list, *src)
	}
	if err := it.Error(); err != nil {
		return nil, internal("list sources", err)
	}
	return list, nil
}

// UpdateSource replaces a source, keeping its createdAt. See
// cairn.SourceStore.
func (s *Store) UpdateSource(ctx context.Context, src *cairn.Source) error {
	v := *src
	if err := v.Validate(); err != nil {
		return err
	}
	if v.WriteKey == "" {
		return cairn.Errorf(cairn.EINVALID, "write key is required")
	}
	if err := s.checkOpen(); err != nil {
		return err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var old sourceRecord
	if v.ID == "" {
		return notFound("source")
	}
	if err := s.getJSON(sourceKey('i', v.ID), &old, "source"); err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close() //nolint:errcheck // Batch.Close only releases memory; it fails only when called twice
	if v.WriteKey != old.WriteKey {
		if taken, err := s.exists(sourceKey('k', v.WriteKey)); err != nil {
			return err
		} else if taken {
			return cairn.Errorf(cairn.ECONFLICT, "a source with this write key exists")
		}
		if err := b.Delete(sourceKey('k', old.WriteKey), nil); err != nil {
			return internal("update source", err)
		}
		if err := b.Set(sourceKey('k', v.WriteKey), []byte(v.ID), nil); err != nil {
			return internal("update source", err)
		}
	}
	v.CreatedAt, v.UpdatedAt = fromMS(old.CreatedAt), fromMS(ms(v.UpdatedAt))
	err := setJSON(b, sourceKey('i', v.ID), sourceRecordOf(&v))
	if err == nil {
		err = b.Commit(pebble.Sync)
	}
	if err != nil {
		return internal("update source", err)
	}
	*src = v
	return nil
}

// DeleteSource removes a source. See cairn.SourceStore.
func (s *Store) DeleteSource(ctx context.Context, id string) error {
	if id == "" {
		return notFound("source")
	}
	if err := s.checkOpen(); err != nil {
		return err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var r sourceRecord
	if err := s.getJSON(sourceKey('i', id), &r, "source"); err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close() //nolint:errcheck // Batch.Close only releases memory; it fails only when called twice
	err := b.Delete(sourceKey('i', id), nil)
	if err == nil {
		err = b.Delete(sourceKey('k', r.WriteKey), nil)
	}
	if err == nil {
		err = b.Delete(sourceCreatedKey(fromMS(r.CreatedAt), id), nil)
	}
	if err == nil {
		err = b.Commit(pebble.Sync)
	}
	if err != nil {
		return internal("delete source", err)
	}
	return nil
}
