package cairn

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// MaxPayloadDepth is the deepest a payload may nest objects and arrays, the
// payload object itself being depth 1. MongoDB refuses documents nested
// deeper than 100 levels; 64 leaves room for the event document around the
// payload and for Segment context, and is far beyond any tracking payload.
const MaxPayloadDepth = 64

// CheckPayload reports the first part of payload (one valid JSON value, as a
// decoder yields it) that the stores could not keep exactly as sent, so
// that ingest refuses it instead of storing something else: nesting deeper
// than MaxPayloadDepth, or a number whose value a float64 (or, for an
// integer, an int64) does not hold exactly — 1e400, a 30-digit integer,
// 1.00000000000000000001. Numbers that differ only in spelling (1.0, 1e2,
// 0.1) are fine. It returns the field path, such as "payload.a.b[2]", and a
// message; field is "" when the payload is fine.
func CheckPayload(payload []byte) (field, msg string) {
	if payloadOK(payload) {
		return "", ""
	}
	return locatePayloadProblem(payload)
}

// payloadOK is the fast check: one pass over the bytes, with the exact
// number test only for numbers too long to be obviously exact.
func payloadOK(b []byte) bool {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		case '{', '[':
			if depth++; depth > MaxPayloadDepth {
				return false
			}
		case '}', ']':
			depth--
		case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			j := i + 1
			for j < len(b) && strings.IndexByte("0123456789+-.eE", b[j]) >= 0 {
				j++
			}
			if _, ok := numberProblem(b[i:j]); !ok {
				return false
			}
			i = j - 1
		}
	}
	return true
}

// numberProblem reports whether the JSON number s is kept exactly, and why
// not.
func numberProblem(s []byte) (string, bool) {
	digits := 0
	frac := false
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' || c == 'e' || c == 'E':
			frac = true
		}
	}
	if !frac && digits <= 18 || frac && digits <= 15 && !bytes.ContainsAny(s, "eE") {
		return "", true // fits an int64, or 15 significant digits round-trip
	}
	str := string(s)
	if !frac {
		if _, err := strconv.ParseInt(str, 10, 64); err == nil {
			return "", true
		}
	}
	f, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return "is outside the range of a 64-bit float", false
	}
	if decimalKey(str) != decimalKey(strconv.FormatFloat(f, 'e', -1, 64)) {
		return "has more precision than a 64-bit float holds", false
	}
	return "", true
}

// decimalKey normalizes a decimal number's text to sign, significant
// digits and exponent, so that equal values give equal keys.
func decimalKey(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	mant, exps, _ := strings.Cut(strings.ToLower(s), "e")
	exp, _ := strconv.Atoi(exps) // short: the number parsed as a float
	intPart, fracPart, _ := strings.Cut(mant, ".")
	digits := intPart + fracPart
	exp -= len(fracPart)
	trimmed := strings.TrimRight(digits, "0")
	exp += len(digits) - len(trimmed)
	trimmed = strings.TrimLeft(trimmed, "0")
	if trimmed == "" {
		return "0"
	}
	sign := ""
	if neg {
		sign = "-"
	}
	return sign + trimmed + "e" + strconv.Itoa(exp)
}

// pathFrame is one open container while locatePayloadProblem walks.
type pathFrame struct {
	array bool
	index int    // arrays: index of the next element
	key   string // objects: key of the current member
	inKey bool   // objects: a key comes next
}

// pathOf names the value being placed in the innermost container of stack
// ("payload" for the payload object itself).
func pathOf(stack []pathFrame) string {
	var sb strings.Builder
	sb.WriteString("payload")
	for _, f := range stack {
		if f.array {
			sb.WriteString("[" + strconv.Itoa(f.index) + "]")
		} else {
			sb.WriteString("." + f.key)
		}
	}
	return sb.String()
}

// locatePayloadProblem walks payload keeping the path, to name the field
// payloadOK found wrong.
func locatePayloadProblem(b []byte) (string, string) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var stack []pathFrame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return "payload", "cannot be stored as sent"
		}
		if err != nil {
			return "payload", "is not valid JSON"
		}
		if n := len(stack); n > 0 && !stack[n-1].array && stack[n-1].inKey {
			if k, ok := tok.(string); ok { // a member name
				stack[n-1].key, stack[n-1].inKey = k, false
				continue
			}
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				if len(stack)+1 > MaxPayloadDepth {
					return pathOf(stack), fmt.Sprintf("nests deeper than %d levels", MaxPayloadDepth)
				}
				stack = append(stack, pathFrame{array: t == '[', inKey: t == '{'})
				continue
			case '}', ']':
				stack = stack[:len(stack)-1]
			}
		case json.Number:
			if why, ok := numberProblem([]byte(t)); !ok {
				return pathOf(stack), fmt.Sprintf("number %s %s; send it as a string", truncate(string(t), 40), why)
			}
		}
		// A value ended: advance its container.
		if n := len(stack); n > 0 {
			if stack[n-1].array {
				stack[n-1].index++
			} else {
				stack[n-1].inKey = true
			}
		}
	}
}
