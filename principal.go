package cairn

import "net/http"

// Role names for accounts.
const (
	RoleAdmin  = "admin"
	RoleMember = "member"
)

// Principal is the account behind an authenticated request.
type Principal struct {
	UserID string
	Email  string
	Name   string
	Role   string
}

// IsAdmin reports whether the principal has the admin role.
func (p *Principal) IsAdmin() bool { return p != nil && p.Role == RoleAdmin }

// Authenticator authenticates API requests and serves the account endpoints
// (the Better Auth protocol under /api/auth/, GET /session and GET /users).
type Authenticator interface {
	// Authenticate returns the principal of the request's session cookie or
	// bearer token. It returns EUNAUTHORIZED when there is no valid session
	// and EUNAVAILABLE when the session store cannot be reached.
	Authenticate(r *http.Request) (*Principal, error)

	// Handler serves every route listed by Routes.
	Handler() http.Handler

	// Routes lists the routes Handler serves, as net/http patterns
	// ("POST /api/auth/sign-in/email").
	Routes() []string
}
