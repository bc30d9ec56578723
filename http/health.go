package http

import (
	"context"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-dev/cairn"
)

// HealthResponse is the body of GET /health.
type HealthResponse struct {
	Status     string       `json:"status"`
	Timestamp  string       `json:"timestamp"`
	Uptime     float64      `json:"uptime"`
	Memory     HealthMemory `json:"memory"`
	Database   string       `json:"database"`
	BufferSize int64        `json:"bufferSize"`
	Spool      HealthSpool  `json:"spool"`
}

// HealthMemory reports the process's memory, in bytes.
type HealthMemory struct {
	RSS       uint64 `json:"rss"`
	HeapTotal uint64 `json:"heapTotal"`
	HeapUsed  uint64 `json:"heapUsed"`
}

// HealthSpool reports the spool's state.
type HealthSpool struct {
	Backlog  int64  `json:"backlog"`
	Bytes    int64  `json:"bytes"`
	Segments int    `json:"segments"`
	Error    string `json:"error,omitempty"`
}

// handleHealth serves GET /health: 200 "ok" when the store is reachable and
// the spool writable, 503 "degraded" otherwise.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	st := s.Ingester.Stats()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	resp := HealthResponse{
		Status:     "ok",
		Timestamp:  cairn.FormatTime(s.Now()),
		Uptime:     float64(s.Now().Sub(s.started).Milliseconds()) / 1000,
		Memory:     HealthMemory{RSS: readRSS(), HeapTotal: ms.HeapSys, HeapUsed: ms.HeapAlloc},
		Database:   "connected",
		BufferSize: st.Backlog,
		Spool:      HealthSpool{Backlog: st.Backlog, Bytes: st.SpoolBytes, Segments: st.SpoolSegments, Error: st.SpoolError},
	}
	status := http.StatusOK
	if err := s.Store.Ping(ctx); err != nil {
		resp.Status, resp.Database, status = "degraded", "disconnected", http.StatusServiceUnavailable
	}
	if st.SpoolError != "" {
		resp.Status, status = "degraded", http.StatusServiceUnavailable
	}
	w.Header().Set("Cache-Control", "no-store")
	s.writeJSON(w, r, status, resp)
}

// readRSS returns the resident set size in bytes (0 where unavailable).
func readRSS() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * uint64(os.Getpagesize())
}

// StatsResponse is the body of GET /stats.
type StatsResponse struct {
	BufferSize           int64   `json:"bufferSize"`
	IsFlushingInProgress bool    `json:"isFlushingInProgress"`
	MaxBufferSize        int     `json:"maxBufferSize"`
	EmergencyThreshold   int64   `json:"emergencyThreshold"`
	BufferUtilization    float64 `json:"bufferUtilization"`
	FlushIntervalMs      int64   `json:"flushIntervalMs"`
	Accepted             int64   `json:"accepted"`
	Stored               int64   `json:"stored"`
	DuplicatesIgnored    int64   `json:"duplicatesIgnored"`
	DeadLettered         int64   `json:"deadLettered"`
	Flushes              int64   `json:"flushes"`
	FlushFailures        int64   `json:"flushFailures"`
	LastFlushDurationMs  float64 `json:"lastFlushDurationMs"`
	LastFlushAt          *string `json:"lastFlushAt"`
	SpoolBytes           int64   `json:"spoolBytes"`
	SpoolSegments        int     `json:"spoolSegments"`
	SpoolCorruptRecords  int64   `json:"spoolCorruptRecords"`
	CheckpointResets     int64   `json:"checkpointResets"`
}

// handleStats serves GET /stats.
func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) {
	st := s.Ingester.Stats()
	resp := StatsResponse{
		BufferSize:           st.Backlog,
		IsFlushingInProgress: st.Flushing,
		MaxBufferSize:        st.FlushSize,
		EmergencyThreshold:   st.MaxBacklog,
		FlushIntervalMs:      st.FlushInterval.Milliseconds(),
		Accepted:             st.Accepted,
		Stored:               st.Stored,
		DuplicatesIgnored:    st.Duplicates,
		DeadLettered:         st.DeadLettered,
		Flushes:              st.Flushes,
		FlushFailures:        st.FlushFailures,
		LastFlushDurationMs:  float64(st.LastFlushDuration.Microseconds()) / 1000,
		SpoolBytes:           st.SpoolBytes,
		SpoolSegments:        st.SpoolSegments,
		SpoolCorruptRecords:  st.SpoolCorruptRecords,
		CheckpointResets:     st.CheckpointResets,
	}
	if st.MaxBacklog > 0 {
		resp.BufferUtilization = float64(st.Backlog*10000/st.MaxBacklog) / 100
	}
	if !st.LastFlushAt.IsZero() {
		at := cairn.FormatTime(st.LastFlushAt)
		resp.LastFlushAt = &at
	}
	w.Header().Set("Cache-Control", "no-store")
	s.writeJSON(w, r, http.StatusOK, resp)
}
