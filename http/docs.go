package http

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v4"
)

// The API documentation is one file, openapi.yaml, embedded in the binary:
// it is served as JSON at GET /api-docs.json and explored with Swagger UI at
// GET /api-docs, whose assets (from the npm package swagger-ui-dist, see
// swaggerui/VERSION) are embedded too, so the docs work with no internet
// access. Tests compare the served document with a golden copy, check it
// against the registered routes, and validate every end-to-end exchange
// against it (package apitest).

//go:embed openapi.yaml
var openAPIYAML []byte

//go:embed swaggerui/index.html swaggerui/*.js swaggerui/*.css swaggerui/*.png
var swaggerUI embed.FS

// openAPIJSON converts the embedded document once. It is memoized derived
// data of a compile-time constant, not configuration.
var openAPIJSON = sync.OnceValues(func() ([]byte, error) { return yamlToJSON(openAPIYAML) })

// OpenAPIYAML returns the OpenAPI document as written (YAML).
func OpenAPIYAML() []byte { return bytes.Clone(openAPIYAML) }

// OpenAPIJSON returns the OpenAPI document exactly as GET /api-docs.json
// serves it.
func OpenAPIJSON() ([]byte, error) {
	b, err := openAPIJSON()
	return bytes.Clone(b), err
}

// handleDocsSpec serves the OpenAPI document as JSON.
func (s *Server) handleDocsSpec(w http.ResponseWriter, r *http.Request) {
	b, err := openAPIJSON()
	if err != nil {
		s.writeError(w, r, fmt.Errorf("openapi document: %w", err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("Access-Control-Allow-Origin", "*")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
}

// handleDocsUI serves Swagger UI: its page at /api-docs (/api-docs/ and
// /api-docs/index.html redirect there) and its assets under /api-docs/.
func (s *Server) handleDocsUI(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	switch {
	case r.URL.Path == "/api-docs":
		name = "index.html"
	case name == "" || name == "index.html":
		// One address for the page: its asset URLs are absolute anyway.
		http.Redirect(w, r, "/api-docs", http.StatusMovedPermanently)
		return
	}
	if strings.Contains(name, "/") {
		s.writeError(w, r, errNotFound)
		return
	}
	b, err := fs.ReadFile(swaggerUI, "swaggerui/"+name)
	if err != nil {
		s.writeError(w, r, errNotFound)
		return
	}
	h := w.Header()
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	h.Set("Content-Type", ctype)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	// The assets never change within a build: a checksum is a cheap,
	// correct validator for conditional requests.
	h.Set("ETag", `"`+strconv.FormatUint(uint64(crc32.ChecksumIEEE(b)), 36)+`"`)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
}

// yamlToJSON converts a YAML document to indented JSON, keeping the order
// of mapping keys (so the served document reads like the file) and refusing
// what JSON cannot say (non-string keys, duplicate keys, merge keys, NaN).
func yamlToJSON(src []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("parse openapi.yaml: %w", err)
	}
	var buf bytes.Buffer
	if err := writeJSONNode(&buf, &doc); err != nil {
		return nil, fmt.Errorf("convert openapi.yaml: %w", err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, buf.Bytes(), "", "  "); err != nil {
		return nil, fmt.Errorf("indent openapi json: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

func writeJSONNode(b *bytes.Buffer, n *yaml.Node) error {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) != 1 {
			return fmt.Errorf("line %d: want one document", n.Line)
		}
		return writeJSONNode(b, n.Content[0])
	case yaml.AliasNode:
		return writeJSONNode(b, n.Alias)
	case yaml.MappingNode:
		b.WriteByte('{')
		seen := make(map[string]bool, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
				return fmt.Errorf("line %d: mapping keys must be plain scalars", k.Line)
			}
			if seen[k.Value] {
				return fmt.Errorf("line %d: duplicate key %q", k.Line, k.Value)
			}
			seen[k.Value] = true
			if i > 0 {
				b.WriteByte(',')
			}
			key, _ := json.Marshal(k.Value)
			b.Write(key)
			b.WriteByte(':')
			if err := writeJSONNode(b, n.Content[i+1]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
		return nil
	case yaml.SequenceNode:
		b.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeJSONNode(b, c); err != nil {
				return err
			}
		}
		b.WriteByte(']')
		return nil
	case yaml.ScalarNode:
		var v any
		switch n.ShortTag() {
		case "!!null":
			v = nil
		case "!!bool", "!!int", "!!float":
			if err := n.Decode(&v); err != nil {
				return fmt.Errorf("line %d: %w", n.Line, err)
			}
		default: // !!str, and !!timestamp kept as written
			v = n.Value
		}
		enc, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		b.Write(enc)
		return nil
	}
	return fmt.Errorf("line %d: unsupported YAML node kind %v", n.Line, n.Kind)
}
