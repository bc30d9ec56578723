package betterauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
)

// maxBodyBytes bounds an auth request body.
const maxBodyBytes = 64 << 10

// body is a request body's top-level fields, each as raw JSON. Form fields
// are converted to JSON strings.
type body map[string]json.RawMessage

// readBody parses a JSON or form-urlencoded body, as Better Auth accepts. An
// empty body is an empty object; other media types get 415.
func readBody(w http.ResponseWriter, r *http.Request) (body, *apiError) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, errBodyTooLarge
		}
		return nil, errInvalidJSON
	}
	ct := r.Header.Get("Content-Type")
	if len(bytes.TrimSpace(data)) == 0 && ct == "" {
		return body{}, nil
	}
	mt, _, _ := mime.ParseMediaType(ct)
	switch mt {
	case "application/json":
		if len(bytes.TrimSpace(data)) == 0 {
			return body{}, nil
		}
		var b body
		if err := json.Unmarshal(data, &b); err != nil || b == nil {
			return nil, errInvalidJSON
		}
		return b, nil
	case "application/x-www-form-urlencoded":
		vals, err := url.ParseQuery(string(data))
		if err != nil {
			return nil, errInvalidJSON
		}
		b := body{}
		for k, v := range vals {
			switch {
			case k == "rememberMe" && (v[0] == "true" || v[0] == "false"):
				b[k] = json.RawMessage(v[0])
			default:
				enc, _ := json.Marshal(v[0])
				b[k] = enc
			}
		}
		return b, nil
	default:
		return nil, errUnsupportedMediaType(ct)
	}
}

// jsonKind names the JSON type of raw as zod reports it.
func jsonKind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "undefined"
	}
	switch raw[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

// str returns a string field. A required field must be present; a
// nonEmpty one must not be "" (zod's min(1)).
func (b body) str(field string, required, nonEmpty bool) (string, *apiError) {
	raw, ok := b[field]
	if !ok {
		if required {
			return "", validationError(field, "Invalid input: expected string, received undefined")
		}
		return "", nil
	}
	if k := jsonKind(raw); k != "string" {
		if !required && k == "null" {
			return "", nil
		}
		return "", validationError(field, "Invalid input: expected string, received "+k)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", errInvalidJSON
	}
	if nonEmpty && s == "" {
		return "", validationError(field, "Too small: expected string to have >=1 characters")
	}
	return s, nil
}

// boolean returns an optional boolean field and whether it was present.
func (b body) boolean(field string) (bool, bool, *apiError) {
	raw, ok := b[field]
	if !ok || jsonKind(raw) == "null" {
		return false, false, nil
	}
	if k := jsonKind(raw); k != "boolean" {
		return false, false, validationError(field, "Invalid input: expected boolean, received "+k)
	}
	return bytes.Equal(bytes.TrimSpace(raw), []byte("true")), true, nil
}
