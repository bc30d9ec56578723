package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/pebble"
	"github.com/cairn-dev/cairn/storetest"
)

func TestEraseCommand(t *testing.T) {
	dir := t.TempDir()
	st, err := pebble.Open(filepath.Join(dir, "store"), pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 12, 15, 10, 0, 0, 0, time.UTC)
	if _, err := st.InsertEvents(t.Context(), []cairn.Event{storetest.NewEvent("e1", "ua", at), storetest.NewEvent("e2", "ub", at)}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CAIRN_DATA_DIR", dir)
	for _, tc := range []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"ErrNoUser", []string{"erase"}, 2, ""},
		{"ErrStrayArg", []string{"erase", "--user", "ua", "extra"}, 2, ""},
		{"Erase", []string{"erase", "--user", "ua"}, 0, "erased 1 events of ua\n"},
		{"Again", []string{"erase", "--user", "ua"}, 0, "erased 0 events of ua\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(t.Context(), tc.args, strings.NewReader(""), &stdout, &stderr); code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %s", code, tc.code, stderr.String())
			}
			if tc.code == 0 && stdout.String() != tc.out {
				t.Errorf("stdout %q, want %q", stdout.String(), tc.out)
			}
		})
	}
}
