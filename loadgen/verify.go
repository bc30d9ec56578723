package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// VerifyResult is the outcome of Verify.
type VerifyResult struct {
	// OK is true when every acknowledged event is stored exactly once.
	OK bool `json:"ok"`
	// Acknowledged counts the acknowledged events checked.
	Acknowledged int `json:"acknowledged"`
	// Found counts acknowledged events seen in their user's journey.
	Found int `json:"found"`
	// Missing counts acknowledged events never seen before the deadline.
	Missing int `json:"missing"`
	// Duplicated counts acknowledged events seen more than once.
	Duplicated int `json:"duplicated"`
	// Unacknowledged counts stored events of this run that were not
	// acknowledged (requests that failed or timed out after the server
	// accepted them): not an error.
	Unacknowledged int `json:"unacknowledged"`
	// Users and Pages count the journeys and pages read.
	Users int `json:"users"`
	Pages int `json:"pages"`
	// Samples of problem eventIds (at most 10 each).
	MissingSample    []string `json:"missingSample,omitempty"`
	DuplicatedSample []string `json:"duplicatedSample,omitempty"`
	// Error is set when verification could not finish (e.g. a journey read
	// failed); the counts are then those reached.
	Error string `json:"error,omitempty"`
}

// Verify checks through GET /users/{id}/journey (following nextCursor) that
// each acknowledged event of run runID is stored exactly once. Events reach
// the store asynchronously, so users with missing events are read again until
// none is missing or ctx ends. auth, if non-nil, authenticates each request.
func Verify(ctx context.Context, client *http.Client, baseURL, runID string, acked []Ack, auth func(*http.Request)) *VerifyResult {
	baseURL = strings.TrimRight(baseURL, "/")
	byUser := map[string]map[string]bool{} // user -> acked ids
	res := &VerifyResult{Acknowledged: len(acked)}
	for _, a := range acked {
		m := byUser[a.UserID]
		if m == nil {
			m = map[string]bool{}
			byUser[a.UserID] = m
		}
		m[a.EventID] = true
	}
	res.Users = len(byUser)
	pending := make([]string, 0, len(byUser))
	for u := range byUser {
		pending = append(pending, u)
	}
	slices.Sort(pending)

	prefix := runID + "-"
	final := map[string]userCheck{}
	var mu sync.Mutex
	// readErr is the error to report if ctx ends with reads still failing:
	// the latest read error, except that a failure caused by ctx ending
	// itself never hides an earlier, real one (say a 401).
	var readErr error
	byDeadline := func(err error) bool { return ctx.Err() != nil && errors.Is(err, ctx.Err()) }
	for attempt := 0; ; attempt++ {
		var (
			wg      sync.WaitGroup
			sem     = make(chan struct{}, 8)
			next    []string
			firstEr error
		)
		for _, u := range pending {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				c, pages, err := checkUser(ctx, client, baseURL, u, prefix, byUser[u], auth)
				mu.Lock()
				defer mu.Unlock()
				res.Pages += pages
				if err != nil {
					if firstEr == nil || byDeadline(firstEr) {
						firstEr = err
					}
					next = append(next, u)
					return
				}
				final[u] = c
				if c.missing > 0 {
					next = append(next, u)
				}
			}()
		}
		wg.Wait()
		switch {
		case firstEr == nil:
			readErr = nil // every read worked; only missing events remain
		case readErr == nil || !byDeadline(firstEr):
			readErr = firstEr
		}
		slices.Sort(next)
		pending = next
		if len(pending) == 0 {
			break
		}
		t := time.NewTimer(200 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			if readErr != nil {
				res.Error = readErr.Error()
			} else {
				res.Error = "deadline reached with events still missing"
			}
		case <-t.C:
		}
		if res.Error != "" {
			break
		}
	}
	for _, u := range sortedKeys(final) {
		c := final[u]
		res.Found += c.found
		res.Missing += c.missing
		res.Duplicated += len(c.dups)
		res.Unacknowledged += c.unacked
		for _, id := range c.dups {
			if len(res.DuplicatedSample) < 10 {
				res.DuplicatedSample = append(res.DuplicatedSample, id)
			}
		}
		for _, id := range c.missingIDs {
			if len(res.MissingSample) < 10 {
				res.MissingSample = append(res.MissingSample, id)
			}
		}
	}
	// Users never read successfully count all their events as missing.
	for u, ids := range byUser {
		if _, ok := final[u]; !ok {
			res.Missing += len(ids)
		}
	}
	res.OK = res.Error == "" && res.Missing == 0 && res.Duplicated == 0 && res.Found == res.Acknowledged
	return res
}

type userCheck struct {
	found, missing, unacked int
	dups, missingIDs        []string
}

// checkUser reads user's whole journey and compares the events of this run
// (eventIds starting with prefix) with want.
func checkUser(ctx context.Context, client *http.Client, baseURL, user, prefix string, want map[string]bool, auth func(*http.Request)) (userCheck, int, error) {
	seen := map[string]int{}
	cursor := ""
	pages := 0
	for {
		target := baseURL + "/users/" + url.PathEscape(user) + "/journey?limit=1000"
		if cursor != "" {
			target += "&cursor=" + url.QueryEscape(cursor)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			return userCheck{}, pages, err
		}
		if auth != nil {
			auth(req)
		}
		resp, err := client.Do(req)
		if err != nil {
			return userCheck{}, pages, fmt.Errorf("journey of %s: %w", user, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close() //nolint:errcheck // the body was read to the end (or is abandoned); closing it only releases the connection
		if err != nil {
			return userCheck{}, pages, fmt.Errorf("journey of %s: %w", user, err)
		}
		if resp.StatusCode != http.StatusOK {
			return userCheck{}, pages, fmt.Errorf("journey of %s: status %d: %s", user, resp.StatusCode, bytes.TrimSpace(body[:min(len(body), 200)]))
		}
		pages++
		var page struct {
			Events []struct {
				EventID string `json:"eventId"`
			} `json:"events"`
			NextCursor *string `json:"nextCursor"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return userCheck{}, pages, fmt.Errorf("journey of %s: decode: %w", user, err)
		}
		for _, e := range page.Events {
			if strings.HasPrefix(e.EventID, prefix) {
				seen[e.EventID]++
			}
		}
		if page.NextCursor == nil || *page.NextCursor == "" {
			break
		}
		if *page.NextCursor == cursor {
			return userCheck{}, pages, fmt.Errorf("journey of %s: nextCursor did not advance", user)
		}
		cursor = *page.NextCursor
	}
	var c userCheck
	for id := range want {
		switch seen[id] {
		case 0:
			c.missing++
			c.missingIDs = append(c.missingIDs, id)
		case 1:
			c.found++
		default:
			c.found++
			c.dups = append(c.dups, id)
		}
	}
	for id, n := range seen {
		if !want[id] {
			c.unacked++
			if n > 1 {
				c.dups = append(c.dups, id)
			}
		}
	}
	slices.Sort(c.dups)
	slices.Sort(c.missingIDs)
	return c, pages, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
