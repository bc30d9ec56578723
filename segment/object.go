package segment

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/cairn-dev/cairn"
)

// field is one member of a JSON object, in the order received.
type field struct {
	key   string
	value json.RawMessage
}

var (
	errNotObject = errors.New("not a JSON object")
	errNotArray  = errors.New("not a JSON array")
	errSyntax    = errors.New("malformed JSON")
)

// The scanners below split JSON that Decode has already checked with
// json.Valid, so they only find boundaries; they still check every index
// and fail with errSyntax rather than panic on anything else.

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at data[i] ('"').
func skipString(data []byte, i int) (int, error) {
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i + 1, nil
		}
	}
	return 0, errSyntax
}

// skipValue returns the index after the value starting at data[i].
func skipValue(data []byte, i int) (int, error) {
	if i >= len(data) {
		return 0, errSyntax
	}
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for ; i < len(data); i++ {
			switch data[i] {
			case '"':
				j, err := skipString(data, i)
				if err != nil {
					return 0, err
				}
				i = j - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1, nil
				}
			}
		}
		return 0, errSyntax
	}
	j := i
	for j < len(data) && data[j] != ',' && data[j] != '}' && data[j] != ']' &&
		data[j] != ' ' && data[j] != '\t' && data[j] != '\n' && data[j] != '\r' {
		j++
	}
	if j == i {
		return 0, errSyntax
	}
	return j, nil
}

// parseObject splits a JSON object (already validated) into its members,
// in order (Decode has already refused repeated member names; should one
// reach here, it keeps its last value, at its first position).
// Keys match exactly (unlike encoding/json's struct fields).
func parseObject(data []byte) ([]field, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return nil, errNotObject
	}
	var fields []field
	var seen map[string]int // key → position, once the object is large
	i := skipSpace(data, 1)
	if i < len(data) && data[i] == '}' {
		return trailing(data, i, fields)
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return nil, errSyntax
		}
		j, err := skipString(data, i)
		if err != nil {
			return nil, err
		}
		key, ok := cairn.JSONString(data[i:j])
		if !ok {
			return nil, errSyntax
		}
		i = skipSpace(data, j)
		if i >= len(data) || data[i] != ':' {
			return nil, errSyntax
		}
		i = skipSpace(data, i+1)
		j, err = skipValue(data, i)
		if err != nil {
			return nil, err
		}
		v := json.RawMessage(data[i:j])
		pos := -1
		if seen != nil {
			if p, ok := seen[key]; ok {
				pos = p
			}
		} else {
			pos = index(fields, key)
		}
		if pos >= 0 {
			fields[pos].value = v
		} else {
			fields = append(fields, field{key, v})
			switch {
			case seen != nil:
				seen[key] = len(fields) - 1
			case len(fields) > 32:
				seen = make(map[string]int, 2*len(fields))
				for p, f := range fields {
					seen[f.key] = p
				}
			}
		}
		i = skipSpace(data, j)
		if i >= len(data) {
			return nil, errSyntax
		}
		if data[i] == '}' {
			return trailing(data, i, fields)
		}
		if data[i] != ',' {
			return nil, errSyntax
		}
		i = skipSpace(data, i+1)
	}
}

// trailing checks that the closing bracket at data[i] ends data.
func trailing(data []byte, i int, fields []field) ([]field, error) {
	if i+1 != len(data) {
		return nil, errors.New("data after the JSON object")
	}
	if fields == nil {
		fields = []field{}
	}
	return fields, nil
}

// parseArray splits a JSON array (already validated) into its elements.
func parseArray(data []byte) ([]json.RawMessage, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '[' {
		return nil, errNotArray
	}
	items := []json.RawMessage{}
	i := skipSpace(data, 1)
	if i < len(data) && data[i] == ']' {
		return items, nil
	}
	for {
		j, err := skipValue(data, i)
		if err != nil {
			return nil, err
		}
		items = append(items, data[i:j])
		i = skipSpace(data, j)
		if i >= len(data) {
			return nil, errSyntax
		}
		if data[i] == ']' {
			if i+1 != len(data) {
				return nil, errSyntax
			}
			return items, nil
		}
		if data[i] != ',' {
			return nil, errSyntax
		}
		i = skipSpace(data, i+1)
	}
}

func index(fields []field, key string) int {
	for i := range fields {
		if fields[i].key == key {
			return i
		}
	}
	return -1
}

// lookup returns the value of key, or nil.
func lookup(fields []field, key string) json.RawMessage {
	if i := index(fields, key); i >= 0 {
		return fields[i].value
	}
	return nil
}

// mergeObject merges a message's object (raw, possibly absent or null) with
// the batch-level one: the message's members, then the batch's members
// whose keys the message lacks. It returns false when raw is neither an
// object nor null. The result is nil when both are absent.
func mergeObject(raw json.RawMessage, batch []field) ([]field, bool) {
	var own []field
	if raw != nil && !cairn.IsJSONNull(raw) {
		var err error
		if own, err = parseObject(raw); err != nil {
			return nil, false
		}
		if own == nil {
			own = []field{}
		}
	}
	if batch == nil {
		return own, true
	}
	merged := append([]field{}, own...)
	for _, f := range batch {
		if index(own, f.key) < 0 {
			merged = append(merged, f)
		}
	}
	return merged, true
}

// buildPayload encodes the message's members in order without writeKey,
// with context and integrations replaced by their merged forms (appended
// when the message had none), compacted.
func buildPayload(fields, context, integrations []field) json.RawMessage {
	var b []byte
	b = append(b, '{')
	first := true
	member := func(key string, value []byte) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = cairn.AppendJSONString(b, key)
		b = append(b, ':')
		b = append(b, value...)
	}
	object := func(fs []field) []byte {
		var o []byte
		o = append(o, '{')
		for i, f := range fs {
			if i > 0 {
				o = append(o, ',')
			}
			o = cairn.AppendJSONString(o, f.key)
			o = append(o, ':')
			o = append(o, f.value...)
		}
		return append(o, '}')
	}
	var sawContext, sawIntegrations bool
	for _, f := range fields {
		switch f.key {
		case "writeKey":
			continue
		case "context":
			sawContext = true
			if context != nil {
				member(f.key, object(context))
				continue
			}
		case "integrations":
			sawIntegrations = true
			if integrations != nil {
				member(f.key, object(integrations))
				continue
			}
		}
		member(f.key, f.value)
	}
	if !sawContext && context != nil {
		member("context", object(context))
	}
	if !sawIntegrations && integrations != nil {
		member("integrations", object(integrations))
	}
	b = append(b, '}')
	var out bytes.Buffer
	out.Grow(len(b))
	if err := json.Compact(&out, b); err != nil {
		return b // cannot happen: every piece is valid JSON
	}
	return out.Bytes()
}
