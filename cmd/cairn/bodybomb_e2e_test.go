package main

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cairnhttp "github.com/cairn-dev/cairn/http"
)

// TestMeasureBodyBomb is a measuring helper, not a check: it fires 200
// concurrent gzip bodies of a few KB, each inflating to the 8 MiB limit, at
// a real `cairn serve` and reports the statuses and the server's peak RSS
// (VmHWM). It asserts neither timings nor memory (the bound itself is
// tested by TestBodyMemoryBudget in http/). It runs only with
// CAIRN_MEASURE=1; CAIRN_BOMB_URL and CAIRN_BOMB_PID aim it at a server
// started by hand instead of the test binary:
//
//	CAIRN_MEASURE=1 go test ./cmd/cairn -run TestMeasureBodyBomb -v
func TestMeasureBodyBomb(t *testing.T) {
	if os.Getenv("CAIRN_MEASURE") != "1" {
		t.Skip("a measurement: set CAIRN_MEASURE=1 to run it")
	}
	url, pid := os.Getenv("CAIRN_BOMB_URL"), os.Getenv("CAIRN_BOMB_PID")
	if url == "" {
		p := startCairn(t, "", "CAIRN_ACCESS_LOG=false")
		url, pid = p.URL, strconv.Itoa(p.cmd.Process.Pid)
		defer p.Stop()
	}
	ev := `{"userId":"u","sessionId":"s","type":"page_view","payload":{"p":"` + strings.Repeat("a", 8000) + `"}}`
	raw := "[" + strings.Repeat(ev+",", cairnhttp.MaxEventsPerRequest-1) + ev + "]"
	var body bytes.Buffer
	zw := gzip.NewWriter(&body)
	_, _ = zw.Write([]byte(raw))
	_ = zw.Close()
	t.Logf("body: %d bytes gzip, %d inflated", body.Len(), len(raw))
	const n = 200
	var mu sync.Mutex
	statuses := map[string]int{}
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 120 * time.Second}
	start := time.Now()
	for range n {
		wg.Go(func() {
			req, _ := http.NewRequest("POST", url+"/events", bytes.NewReader(body.Bytes()))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Content-Encoding", "gzip")
			resp, err := client.Do(req)
			key := ""
			if err != nil {
				key = "error"
			} else {
				key = strconv.Itoa(resp.StatusCode)
				_ = resp.Body.Close() // only the status matters
			}
			mu.Lock()
			statuses[key]++
			mu.Unlock()
		})
	}
	wg.Wait()
	t.Logf("%d requests in %v: %v", n, time.Since(start).Round(time.Millisecond), statuses)
	if b, err := os.ReadFile("/proc/" + pid + "/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "VmHWM") || strings.HasPrefix(line, "VmRSS") {
				t.Log(strings.Join(strings.Fields(line), " "))
			}
		}
	} else {
		t.Logf("cannot read the server's memory: %v", err)
	}
}
