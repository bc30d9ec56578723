package cairn

import (
	"encoding/binary"
	"errors"
	"time"
)

// The binary event encoding is how events travel through the spool and how
// the embedded store keeps them. It is compact and cheap to decode:
//
//	event   = version(1 byte) eventId userId sessionId type payload occurredAt receivedAt [ids]
//	ids     = sourceId anonymousId               (version 2 only)
//	string  = uvarint(len) bytes
//	payload = uvarint(len) JSON bytes
//	time    = varint(unix milliseconds)
//
// A batch is uvarint(count) followed by count events.
//
// Version 1 is the original format (no sourceId, no anonymousId). Version 2
// appends the two ids. AppendBinary writes version 1 when both ids are
// empty (so seed-API events keep the exact bytes older binaries wrote and
// read) and version 2 otherwise; DecodeBinary reads both, so spool segments
// and stored values written before version 2 existed still decode. Each
// event carries its own version byte, so one batch may mix them.
const (
	binaryVersion1 = 1
	binaryVersion2 = 2
)

// ErrBadEncoding is returned when binary event data cannot be decoded.
var ErrBadEncoding = errors.New("bad binary event encoding")

// AppendBinary appends the binary encoding of e to b.
func (e *Event) AppendBinary(b []byte) []byte {
	v2 := e.SourceID != "" || e.AnonymousID != ""
	if v2 {
		b = append(b, binaryVersion2)
	} else {
		b = append(b, binaryVersion1)
	}
	b = appendString(b, e.EventID)
	b = appendString(b, e.UserID)
	b = appendString(b, e.SessionID)
	b = appendString(b, e.Type)
	b = binary.AppendUvarint(b, uint64(len(e.Payload)))
	b = append(b, e.Payload...)
	b = binary.AppendVarint(b, e.OccurredAt.UnixMilli())
	b = binary.AppendVarint(b, e.ReceivedAt.UnixMilli())
	if v2 {
		b = appendString(b, e.SourceID)
		b = appendString(b, e.AnonymousID)
	}
	return b
}

// DecodeBinary decodes one event from the front of b and returns the rest.
// The event's strings and payload are copies, so b may be reused.
func (e *Event) DecodeBinary(b []byte) ([]byte, error) {
	if len(b) == 0 || (b[0] != binaryVersion1 && b[0] != binaryVersion2) {
		return nil, ErrBadEncoding
	}
	version := b[0]
	b = b[1:]
	var ok bool
	if e.EventID, b, ok = readString(b); !ok {
		return nil, ErrBadEncoding
	}
	if e.UserID, b, ok = readString(b); !ok {
		return nil, ErrBadEncoding
	}
	if e.SessionID, b, ok = readString(b); !ok {
		return nil, ErrBadEncoding
	}
	if e.Type, b, ok = readString(b); !ok {
		return nil, ErrBadEncoding
	}
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, ErrBadEncoding
	}
	e.Payload = append([]byte(nil), b[k:k+int(n)]...)
	b = b[k+int(n):]
	occ, k := binary.Varint(b)
	if k <= 0 {
		return nil, ErrBadEncoding
	}
	b = b[k:]
	rec, k := binary.Varint(b)
	if k <= 0 {
		return nil, ErrBadEncoding
	}
	e.OccurredAt = time.UnixMilli(occ).UTC()
	e.ReceivedAt = time.UnixMilli(rec).UTC()
	b = b[k:]
	e.SourceID, e.AnonymousID = "", ""
	if version == binaryVersion2 {
		if e.SourceID, b, ok = readString(b); !ok {
			return nil, ErrBadEncoding
		}
		if e.AnonymousID, b, ok = readString(b); !ok {
			return nil, ErrBadEncoding
		}
	}
	return b, nil
}

// AppendBatch appends the binary encoding of events to b.
func AppendBatch(b []byte, events []Event) []byte {
	b = binary.AppendUvarint(b, uint64(len(events)))
	for i := range events {
		b = events[i].AppendBinary(b)
	}
	return b
}

// DecodeBatch decodes a batch written by AppendBatch, appending the events
// to dst. It never panics on malformed input.
func DecodeBatch(dst []Event, b []byte) ([]Event, error) {
	n, k := binary.Uvarint(b)
	// Each event takes at least 10 bytes, which bounds n before allocating.
	if k <= 0 || n > uint64(len(b)/10+1) {
		return dst, ErrBadEncoding
	}
	b = b[k:]
	for i := uint64(0); i < n; i++ {
		var e Event
		var err error
		if b, err = e.DecodeBinary(b); err != nil {
			return dst, err
		}
		dst = append(dst, e)
	}
	if len(b) != 0 {
		return dst, ErrBadEncoding
	}
	return dst, nil
}

// BatchLen returns the number of events in a batch written by AppendBatch
// without decoding them.
func BatchLen(b []byte) (int, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)/10+1) {
		return 0, ErrBadEncoding
	}
	return int(n), nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func readString(b []byte) (string, []byte, bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return "", nil, false
	}
	return string(b[k : k+int(n)]), b[k+int(n):], true
}
