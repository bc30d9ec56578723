package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// SessionCookie is the name of Cairn's (Better Auth's) session cookie.
const SessionCookie = "better-auth.session_token"

// Authenticate returns a function that adds a's credentials to a request, or
// nil when a is empty. With only Email and Password set, it first signs in
// through POST /api/auth/sign-in/email and uses the session cookie it gets
// (or, failing that, the token in the response body as a bearer token).
func Authenticate(ctx context.Context, client *http.Client, baseURL string, a Auth) (func(*http.Request), error) {
	switch {
	case a.Cookie != "":
		cookie := a.Cookie
		if !strings.Contains(cookie, "=") {
			cookie = SessionCookie + "=" + cookie
		}
		return func(r *http.Request) { r.Header.Set("Cookie", cookie) }, nil
	case a.Token != "":
		return bearer(a.Token), nil
	case a.Email != "":
		return signIn(ctx, client, strings.TrimRight(baseURL, "/"), a.Email, a.Password)
	}
	return nil, nil
}

func bearer(token string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
}

func signIn(ctx context.Context, client *http.Client, baseURL, email, password string) (func(*http.Request), error) {
	body, err := json.Marshal(map[string]string{"email": email, "password": password})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/api/auth/sign-in/email", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("sign in: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("sign in: %w", err)
	}
	defer resp.Body.Close() //nolint:errcheck // the body was read to the end (or is abandoned); closing it only releases the connection
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("sign in: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("sign in as %s: status %d: %s", email, resp.StatusCode, bytes.TrimSpace(data[:min(len(data), 200)]))
	}
	var parts []string
	for _, c := range resp.Cookies() {
		if c.Value != "" && c.MaxAge >= 0 {
			parts = append(parts, c.Name+"="+c.Value)
		}
	}
	if len(parts) > 0 {
		cookie := strings.Join(parts, "; ")
		return func(r *http.Request) { r.Header.Set("Cookie", cookie) }, nil
	}
	var out struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(data, &out); err != nil || out.Token == "" {
		return nil, fmt.Errorf("sign in as %s: no session cookie or token in the response", email)
	}
	return bearer(out.Token), nil
}
