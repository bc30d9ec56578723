package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestRetentionRefusedOnEmbeddedStore: the embedded store cannot delete old
// events yet, so CAIRN_RETENTION without MONGODB_URI stops start-up with a
// usage error instead of being silently ignored.
func TestRetentionRefusedOnEmbeddedStore(t *testing.T) {
	t.Setenv("CAIRN_RETENTION", "90d")
	t.Setenv("MONGODB_URI", "")
	var out, errOut bytes.Buffer
	code := run(t.Context(), []string{"serve", "--port", "0", "--host", "127.0.0.1", "--data-dir", t.TempDir()}, nil, &out, &errOut)
	if code != 2 {
		t.Fatalf("exit %d, want 2; stderr %q", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), "CAIRN_RETENTION needs MONGODB_URI") {
		t.Errorf("stderr %q does not say why", errOut.String())
	}
}
