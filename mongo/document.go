package mongo

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cairn-dev/cairn"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// Document limits. MongoDB refuses documents over 16 MiB and nesting deeper
// than 100 levels (the payload is one level below the document).
const (
	maxDocumentBytes = 16 * 1024 * 1024
	maxPayloadDepth  = 99
)

// errPermanent marks an event that can never be turned into a document.
var errPermanent = errors.New("event cannot be stored in MongoDB")

// eventDocument returns the BSON document for e:
//
//	{_id: eventId, userId, sessionId, type, [sourceId], [anonymousId], payload: {...}, occurredAt: Date, receivedAt: Date}
//
// sourceId and anonymousId are present only when not empty, so seed-API
// events keep the seed's document shape. Payload keys are escaped with
// escapeKey. An error wrapping errPermanent means the event can never be
// stored.
func eventDocument(e *cairn.Event) ([]byte, error) {
	dst := make([]byte, 0, 192+len(e.Payload)) // the fields, plus the payload
	idx, dst := bsoncore.AppendDocumentStart(dst)
	dst = bsoncore.AppendStringElement(dst, "_id", e.EventID)
	dst = bsoncore.AppendStringElement(dst, "userId", e.UserID)
	dst = bsoncore.AppendStringElement(dst, "sessionId", e.SessionID)
	dst = bsoncore.AppendStringElement(dst, "type", e.Type)
	if e.SourceID != "" {
		dst = bsoncore.AppendStringElement(dst, "sourceId", e.SourceID)
	}
	if e.AnonymousID != "" {
		dst = bsoncore.AppendStringElement(dst, "anonymousId", e.AnonymousID)
	}
	var err error
	if dst, err = appendPayload(dst, e.Payload); err != nil {
		return nil, err
	}
	dst = bsoncore.AppendDateTimeElement(dst, "occurredAt", e.OccurredAt.UnixMilli())
	dst = bsoncore.AppendDateTimeElement(dst, "receivedAt", e.ReceivedAt.UnixMilli())
	if dst, err = bsoncore.AppendDocumentEnd(dst, idx); err != nil {
		return nil, fmt.Errorf("end document: %w", err)
	}
	if n := len(dst); n > maxDocumentBytes {
		return nil, fmt.Errorf("%w: document is %d bytes, over MongoDB's 16 MiB limit", errPermanent, n)
	}
	return dst, nil
}

// appendPayload converts the JSON object payload to a BSON sub-document named
// "payload", preserving types: integers become int32 (or int64 when larger),
// other numbers doubles.
func appendPayload(dst []byte, payload json.RawMessage) ([]byte, error) {
	if len(bytes.TrimSpace(payload)) == 0 {
		idx, dst := bsoncore.AppendDocumentElementStart(dst, "payload")
		return bsoncore.AppendDocumentEnd(dst, idx)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return dst, fmt.Errorf("%w: payload is not valid JSON: %w", errPermanent, err)
	}
	if tok != json.Delim('{') {
		return dst, fmt.Errorf("%w: payload is not a JSON object", errPermanent)
	}
	idx, dst := bsoncore.AppendDocumentElementStart(dst, "payload")
	if dst, err = appendObject(dst, dec, 1); err != nil {
		return dst, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return dst, fmt.Errorf("%w: payload has trailing data", errPermanent)
	}
	return bsoncore.AppendDocumentEnd(dst, idx)
}

// appendObject appends the members of a JSON object whose '{' has been read.
func appendObject(dst []byte, dec *json.Decoder, depth int) ([]byte, error) {
	for {
		tok, err := dec.Token()
		if err != nil {
			return dst, fmt.Errorf("%w: payload is not valid JSON: %w", errPermanent, err)
		}
		if tok == json.Delim('}') {
			return dst, nil
		}
		key, ok := tok.(string)
		if !ok {
			return dst, fmt.Errorf("%w: payload is not valid JSON", errPermanent)
		}
		if dst, err = appendValue(dst, escapeKey(key), dec, depth); err != nil {
			return dst, err
		}
	}
}

// appendValue reads one JSON value from dec and appends it as element key.
func appendValue(dst []byte, key string, dec *json.Decoder, depth int) ([]byte, error) {
	tok, err := dec.Token()
	if err != nil {
		return dst, fmt.Errorf("%w: payload is not valid JSON: %w", errPermanent, err)
	}
	switch v := tok.(type) {
	case nil:
		return bsoncore.AppendNullElement(dst, key), nil
	case bool:
		return bsoncore.AppendBooleanElement(dst, key, v), nil
	case string:
		return bsoncore.AppendStringElement(dst, key, v), nil
	case json.Number:
		return appendNumber(dst, key, string(v)), nil
	case json.Delim:
		if depth >= maxPayloadDepth {
			return dst, fmt.Errorf("%w: payload nests deeper than %d levels", errPermanent, maxPayloadDepth)
		}
		var idx int32
		switch v {
		case '{':
			idx, dst = bsoncore.AppendDocumentElementStart(dst, key)
			if dst, err = appendObject(dst, dec, depth+1); err != nil {
				return dst, err
			}
		case '[':
			idx, dst = bsoncore.AppendArrayElementStart(dst, key)
			for i := 0; dec.More(); i++ {
				if dst, err = appendValue(dst, strconv.Itoa(i), dec, depth+1); err != nil {
					return dst, err
				}
			}
			if _, err := dec.Token(); err != nil { // ']'
				return dst, fmt.Errorf("%w: payload is not valid JSON: %w", errPermanent, err)
			}
		default:
			return dst, fmt.Errorf("%w: payload is not valid JSON", errPermanent)
		}
		return bsoncore.AppendDocumentEnd(dst, idx)
	}
	return dst, fmt.Errorf("%w: payload is not valid JSON", errPermanent)
}

// appendNumber stores integers as int32 when they fit, else int64, and
// everything else (fractions, exponents, huge integers) as double.
func appendNumber(dst []byte, key, s string) []byte {
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			if i >= math.MinInt32 && i <= math.MaxInt32 {
				return bsoncore.AppendInt32Element(dst, key, int32(i))
			}
			return bsoncore.AppendInt64Element(dst, key, i)
		}
	}
	f, _ := strconv.ParseFloat(s, 64) // a valid JSON number; ±Inf on overflow
	if math.IsInf(f, 0) {
		return bsoncore.AppendStringElement(dst, key, s)
	}
	return bsoncore.AppendDoubleElement(dst, key, f)
}

// escapeKey makes a payload key storable on every MongoDB-wire server.
//
// MongoDB 5+ accepts keys containing "." or starting with "$" but many tools
// (and FerretDB) do not, and a NUL byte can never be stored. Such keys, and keys
// starting with "%", are stored as "%" followed by the key with "%", ".", "$"
// and NUL percent-encoded ("a.b" → "%a%2Eb", "$set" → "%%24set"). Every other
// key is stored as is. unescapeKey reverses it, so journeys return the
// payload exactly as it was sent.
func escapeKey(k string) string {
	if !strings.ContainsAny(k, ".\x00") && !strings.HasPrefix(k, "$") && !strings.HasPrefix(k, "%") {
		return k
	}
	var b strings.Builder
	b.Grow(len(k) + 8)
	b.WriteByte('%')
	for i := 0; i < len(k); i++ {
		switch c := k[i]; c {
		case '%':
			b.WriteString("%25")
		case '.':
			b.WriteString("%2E")
		case '$':
			b.WriteString("%24")
		case 0:
			b.WriteString("%00")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// unescapeKey reverses escapeKey. Keys not starting with "%" are returned as
// they are.
func unescapeKey(k string) string {
	if !strings.HasPrefix(k, "%") {
		return k
	}
	k = k[1:]
	if !strings.Contains(k, "%") {
		return k
	}
	var b strings.Builder
	b.Grow(len(k))
	for i := 0; i < len(k); i++ {
		if k[i] == '%' && i+3 <= len(k) {
			switch k[i+1 : i+3] {
			case "25":
				b.WriteByte('%')
				i += 2
				continue
			case "2E":
				b.WriteByte('.')
				i += 2
				continue
			case "24":
				b.WriteByte('$')
				i += 2
				continue
			case "00":
				b.WriteByte(0)
				i += 2
				continue
			}
		}
		b.WriteByte(k[i])
	}
	return b.String()
}

// decodeEvent decodes a stored document leniently, so documents written by
// the Node seed read too: the eventId is the "eventId" field if present, else
// _id (a string, or an ObjectId as hex); dates may also be strings or numbers;
// unknown fields (__v, createdAt, ...) are ignored.
func decodeEvent(doc bson.Raw) (cairn.Event, error) {
	var e cairn.Event
	if err := doc.Validate(); err != nil {
		return e, fmt.Errorf("decode document: %w", err)
	}
	elems, err := doc.Elements()
	if err != nil {
		return e, fmt.Errorf("decode document: %w", err)
	}
	var id string
	for _, el := range elems {
		v := el.Value()
		switch el.Key() {
		case "_id":
			if id == "" {
				id = idString(v)
			}
		case "eventId":
			if s, ok := v.StringValueOK(); ok && s != "" {
				id = s
			}
		case "userId":
			e.UserID = scalarString(v)
		case "sessionId":
			e.SessionID = scalarString(v)
		case "type":
			e.Type = scalarString(v)
		case "sourceId":
			e.SourceID = scalarString(v)
		case "anonymousId":
			e.AnonymousID = scalarString(v)
		case "payload":
			if v.Type == bson.TypeEmbeddedDocument {
				e.Payload = appendJSONDocument(make([]byte, 0, len(v.Value)+16), v.Document())
			}
		case "occurredAt":
			e.OccurredAt = timeValue(v)
		case "receivedAt":
			e.ReceivedAt = timeValue(v)
		}
	}
	e.EventID = id
	if len(e.Payload) == 0 {
		e.Payload = json.RawMessage("{}")
	}
	if e.ReceivedAt.IsZero() {
		e.ReceivedAt = e.OccurredAt
	}
	return e, nil
}

func idString(v bson.RawValue) string {
	switch v.Type {
	case bson.TypeString:
		return v.StringValue()
	case bson.TypeObjectID:
		return v.ObjectID().Hex()
	}
	return scalarString(v)
}

// scalarString renders a scalar as a string ("" for documents and arrays).
func scalarString(v bson.RawValue) string {
	switch v.Type {
	case bson.TypeString:
		return v.StringValue()
	case bson.TypeObjectID:
		return v.ObjectID().Hex()
	case bson.TypeInt32:
		return strconv.FormatInt(int64(v.Int32()), 10)
	case bson.TypeInt64:
		return strconv.FormatInt(v.Int64(), 10)
	case bson.TypeDouble:
		return strconv.FormatFloat(v.Double(), 'g', -1, 64)
	case bson.TypeBinary:
		if st, data := v.Binary(); st == 4 && len(data) == 16 { // UUID
			h := hex.EncodeToString(data)
			return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
		}
	}
	return ""
}

// timeValue reads a BSON date (or an ISO string or epoch milliseconds).
func timeValue(v bson.RawValue) time.Time {
	switch v.Type {
	case bson.TypeDateTime:
		return time.UnixMilli(v.DateTime()).UTC()
	case bson.TypeString:
		t, _ := cairn.ParseTime(v.StringValue())
		return t
	case bson.TypeInt64:
		return time.UnixMilli(v.Int64()).UTC()
	case bson.TypeInt32:
		return time.UnixMilli(int64(v.Int32())).UTC()
	case bson.TypeDouble:
		return time.UnixMilli(int64(v.Double())).UTC()
	case bson.TypeTimestamp:
		t, _ := v.Timestamp()
		return time.Unix(int64(t), 0).UTC()
	}
	return time.Time{}
}

// appendJSONDocument appends the JSON object for a BSON document, unescaping
// keys. BSON types without a JSON counterpart become strings (dates in ISO
// 8601, ObjectIds in hex, binaries in base64, decimals in decimal notation).
func appendJSONDocument(b []byte, doc bson.Raw) []byte {
	elems, _ := doc.Elements()
	b = append(b, '{')
	for i, el := range elems {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, unescapeKey(el.Key()))
		b = append(b, ':')
		b = appendJSONValue(b, el.Value())
	}
	return append(b, '}')
}

func appendJSONArray(b []byte, arr bson.RawArray) []byte {
	vals, _ := arr.Values()
	b = append(b, '[')
	for i, v := range vals {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONValue(b, v)
	}
	return append(b, ']')
}

func appendJSONValue(b []byte, v bson.RawValue) []byte {
	switch v.Type {
	case bson.TypeDouble:
		f := v.Double()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return append(b, "null"...)
		}
		return appendJSONFloat(b, f)
	case bson.TypeString:
		return appendJSONString(b, v.StringValue())
	case bson.TypeEmbeddedDocument:
		return appendJSONDocument(b, v.Document())
	case bson.TypeArray:
		return appendJSONArray(b, v.Array())
	case bson.TypeBinary:
		if s := scalarString(v); s != "" {
			return appendJSONString(b, s)
		}
		_, data := v.Binary()
		return appendJSONString(b, base64.StdEncoding.EncodeToString(data))
	case bson.TypeObjectID:
		return appendJSONString(b, v.ObjectID().Hex())
	case bson.TypeBoolean:
		return strconv.AppendBool(b, v.Boolean())
	case bson.TypeDateTime:
		b = append(b, '"')
		b = cairn.AppendTime(b, time.UnixMilli(v.DateTime()))
		return append(b, '"')
	case bson.TypeInt32:
		return strconv.AppendInt(b, int64(v.Int32()), 10)
	case bson.TypeInt64:
		return strconv.AppendInt(b, v.Int64(), 10)
	case bson.TypeDecimal128:
		return appendJSONString(b, v.Decimal128().String())
	case bson.TypeTimestamp:
		t, _ := v.Timestamp()
		b = append(b, '"')
		b = cairn.AppendTime(b, time.Unix(int64(t), 0))
		return append(b, '"')
	case bson.TypeRegex:
		p, o := v.Regex()
		return appendJSONString(b, "/"+p+"/"+o)
	case bson.TypeSymbol:
		return appendJSONString(b, v.Symbol())
	case bson.TypeJavaScript:
		return appendJSONString(b, v.JavaScript())
	}
	// Null, undefined, MinKey, MaxKey, DBPointer, code with scope.
	return append(b, "null"...)
}

// appendJSONFloat formats f as encoding/json does (ES6 number formatting).
func appendJSONFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				switch c {
				case '\n':
					b = append(b, '\\', 'n')
				case '\r':
					b = append(b, '\\', 'r')
				case '\t':
					b = append(b, '\\', 't')
				default:
					b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
				}
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
