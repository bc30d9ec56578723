package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/mongo"
	"github.com/cairn-dev/cairn/pebble"
	"github.com/cairn-dev/cairn/wal"
)

func TestConfigPrecedence(t *testing.T) {
	dotenv := filepath.Join(t.TempDir(), ".env")
	os.WriteFile(dotenv, []byte("PORT=4000\nCAIRN_FLUSH_SIZE=7\nCAIRN_FLUSH_INTERVAL=3s\nNODE_ENV=production\n"), 0o644)
	env := map[string]string{"CAIRN_FLUSH_SIZE": "8", "CAIRN_FLUSH_INTERVAL": "250ms"}
	getenv := func(k string) string { return env[k] }
	c, _, err := loadConfig("serve", []string{"--flush-interval", "2s"}, getenv, dotenv, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 4000 { // .env over default
		t.Errorf("Port = %d, want 4000 from .env", c.Port)
	}
	if c.FlushSize != 8 { // env over .env
		t.Errorf("FlushSize = %d, want 8 from the environment", c.FlushSize)
	}
	if c.FlushInterval != 2*time.Second { // flag over env
		t.Errorf("FlushInterval = %v, want 2s from the flag", c.FlushInterval)
	}
	if !c.Production() || c.LogFormat != "json" { // NODE_ENV as the seed's
		t.Errorf("Env = %q LogFormat = %q, want production/json", c.Env, c.LogFormat)
	}
	d, _, err := loadConfig("serve", nil, func(string) string { return "" }, filepath.Join(t.TempDir(), "missing"), io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Port != 3000 || d.DataDir != "./data" || d.FlushSize != 500 || d.FlushInterval != time.Second ||
		d.MaxBacklog != 1_000_000 || d.MaxFuture != 24*time.Hour || d.Env != "development" || d.MongoWriteConcern != "majority" {
		t.Errorf("defaults wrong: %+v", d)
	}
}

func TestConfigInvalid(t *testing.T) {
	cases := map[string]string{
		"PORT":                      "http",
		"CAIRN_FLUSH_SIZE":          "0",
		"CAIRN_FLUSH_INTERVAL":      "soon",
		"CAIRN_MAX_BACKLOG":         "-1",
		"CAIRN_RETENTION":           "5m",
		"MONGODB_URI":               "postgres://x",
		"CAIRN_MONGO_WRITE_CONCERN": "all",
		"CAIRN_ENV":                 "staging",
		"CAIRN_LOG_LEVEL":           "loud",
		"BETTER_AUTH_URL":           "example.com",
		"CAIRN_REQUIRE_WRITE_KEY":   "yes",
		"CAIRN_SESSION_GAP":         "30s",
	}
	for key, val := range cases {
		t.Run(key, func(t *testing.T) {
			_, _, err := loadConfig("serve", nil, func(k string) string {
				if k == key {
					return val
				}
				return ""
			}, "", io.Discard, nil)
			if err == nil || !strings.Contains(err.Error(), key) {
				t.Fatalf("err = %v, want one naming %s", err, key)
			}
		})
	}
}

func TestTrackingSettings(t *testing.T) {
	d, _, err := loadConfig("serve", nil, func(string) string { return "" }, "", io.Discard, nil)
	if err != nil || d.RequireWriteKey || d.SessionGap != 30*time.Minute {
		t.Fatalf("defaults: RequireWriteKey %v SessionGap %v, %v", d.RequireWriteKey, d.SessionGap, err)
	}
	env := map[string]string{"CAIRN_REQUIRE_WRITE_KEY": "true", "CAIRN_SESSION_GAP": "45m"}
	c, _, err := loadConfig("serve", nil, func(k string) string { return env[k] }, "", io.Discard, nil)
	if err != nil || !c.RequireWriteKey || c.SessionGap != 45*time.Minute {
		t.Fatalf("set: RequireWriteKey %v SessionGap %v, %v", c.RequireWriteKey, c.SessionGap, err)
	}
}

func TestRetentionDays(t *testing.T) {
	c, _, err := loadConfig("serve", []string{"--retention", "90d"}, func(string) string { return "" }, "", io.Discard, nil)
	if err != nil || c.Retention != 90*24*time.Hour {
		t.Fatalf("Retention = %v, %v", c.Retention, err)
	}
}

// TestInvalidSettingExitsWithOneLine runs the real binary.
func TestInvalidSettingExitsWithOneLine(t *testing.T) {
	cmd := exec.Command(cairnBin, "serve")
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "CAIRN_FLUSH_SIZE=lots", "CAIRN_DATA_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
		t.Fatalf("exit = %v, want non-zero", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "CAIRN_FLUSH_SIZE") {
		t.Fatalf("output = %q, want one line naming CAIRN_FLUSH_SIZE", out)
	}
}

func TestBusyPortFailsLoudly(t *testing.T) {
	p := startCairn(t, "")
	port := p.URL[strings.LastIndex(p.URL, ":")+1:]
	cmd := exec.Command(cairnBin, "serve")
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "PORT="+port, "CAIRN_HOST=127.0.0.1", "CAIRN_DATA_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "listen") {
		t.Fatalf("second server on a busy port: err=%v out=%s", err, out)
	}
	// And a second server on the same data dir is refused.
	cmd = exec.Command(cairnBin, "serve")
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "PORT=0", "CAIRN_HOST=127.0.0.1", "CAIRN_DATA_DIR="+p.DataDir)
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use") {
		t.Fatalf("second server on the same data dir: err=%v out=%s", err, out)
	}
}

// TestConfigAdapterDefaults: adapter settings default to what the adapter
// exports, and the write concern is validated by the mongo package's parser
// (config and store cannot disagree).
func TestConfigAdapterDefaults(t *testing.T) {
	d, _, err := loadConfig("serve", nil, func(string) string { return "" }, "", io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.SegmentSize != wal.DefaultSegmentSize || d.StoreCache != pebble.DefaultCacheSize || d.MongoWriteConcern != mongo.DefaultWriteConcern {
		t.Errorf("SegmentSize %d StoreCache %d MongoWriteConcern %q; want the adapters' %d %d %q", d.SegmentSize, d.StoreCache,
			d.MongoWriteConcern, wal.DefaultSegmentSize, pebble.DefaultCacheSize, mongo.DefaultWriteConcern)
	}
	for _, wc := range []string{"majority", "Majority", "1", "3", "0", "-1", "all", "dc-east", " 2 "} {
		_, _, cerr := loadConfig("serve", nil, func(k string) string {
			if k == "CAIRN_MONGO_WRITE_CONCERN" {
				return wc
			}
			return ""
		}, "", io.Discard, nil)
		_, perr := mongo.ParseWriteConcern(wc)
		if (cerr == nil) != (perr == nil) {
			t.Errorf("write concern %q: config says %v, mongo says %v", wc, cerr, perr)
		}
	}
}
