package cairn

import (
	"encoding/binary"
	"errors"
	"strings"
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
// The event's strings and payload are copies, so b may be reused. All the
// strings of one event share one allocation (and the payload another): a
// journey page decodes up to a thousand events, and six allocations per
// event were a fifth of the CPU spent paging a long journey, most of it
// in the garbage collector.
func (e *Event) DecodeBinary(b []byte) ([]byte, error) {
	if len(b) == 0 || (b[0] != binaryVersion1 && b[0] != binaryVersion2) {
		return nil, ErrBadEncoding
	}
	version := b[0]
	rest := b[1:]
	// The spans of the strings within b, in field order: eventId, userId,
	// sessionId, type, then (version 2) sourceId and anonymousId.
	var spans [6][]byte
	nstr, total := 4, 0
	var ok bool
	for i := range 4 {
		if spans[i], rest, ok = stringSpan(rest); !ok {
			return nil, ErrBadEncoding
		}
		total += len(spans[i])
	}
	n, k := binary.Uvarint(rest)
	if k <= 0 || n > uint64(len(rest)-k) {
		return nil, ErrBadEncoding
	}
	payload := rest[k : k+int(n)]
	rest = rest[k+int(n):]
	occ, k := binary.Varint(rest)
	if k <= 0 {
		return nil, ErrBadEncoding
	}
	rest = rest[k:]
	rec, k := binary.Varint(rest)
	if k <= 0 {
		return nil, ErrBadEncoding
	}
	rest = rest[k:]
	if version == binaryVersion2 {
		nstr = 6
		for i := 4; i < 6; i++ {
			if spans[i], rest, ok = stringSpan(rest); !ok {
				return nil, ErrBadEncoding
			}
			total += len(spans[i])
		}
	}
	var sb strings.Builder
	sb.Grow(total)
	for _, sp := range spans[:nstr] {
		sb.Write(sp)
	}
	all := sb.String()
	var strs [6]string
	off := 0
	for i, sp := range spans[:nstr] {
		strs[i] = all[off : off+len(sp)]
		off += len(sp)
	}
	e.EventID, e.UserID, e.SessionID, e.Type = strs[0], strs[1], strs[2], strs[3]
	e.SourceID, e.AnonymousID = strs[4], strs[5]
	e.Payload = append([]byte(nil), payload...)
	e.OccurredAt = time.UnixMilli(occ).UTC()
	e.ReceivedAt = time.UnixMilli(rec).UTC()
	return rest, nil
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

// stringSpan returns the bytes of the string at the front of b (uvarint
// length, then the bytes) and the rest of b.
func stringSpan(b []byte) ([]byte, []byte, bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, false
	}
	return b[k : k+int(n)], b[k+int(n):], true
}
