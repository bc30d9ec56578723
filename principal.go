package cairn

import "context"

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
	// Role is RoleAdmin or RoleMember (never "").
	Role string

	// User and Session are the records the credentials resolved to, for
	// handlers that show them (GET /session). Nil when the principal was
	// not authenticated by a session.
	User    *User
	Session *Session
}

// IsAdmin reports whether the principal has the admin role.
func (p *Principal) IsAdmin() bool { return p != nil && p.Role == RoleAdmin }

// Authenticator resolves the credentials a client presents to a principal.
// Reading credentials off the wire (cookies, bearer headers) is the
// protocol layer's work; an Authenticator only sees the session token.
type Authenticator interface {
	// Authenticate returns the principal of the live session whose token
	// is token. It returns EUNAUTHORIZED when token is empty or names no
	// live session, and EUNAVAILABLE when the session store cannot be
	// reached.
	Authenticate(ctx context.Context, token string) (*Principal, error)
}

// UserLister lists accounts, for administrators.
type UserLister interface {
	// ListUsers returns a page of users, oldest first (createdAt, then
	// id), to the admin principal in ctx (see NewContextWithPrincipal).
	// Returns EFORBIDDEN when ctx carries no admin principal, EINVALID for
	// a limit outside 1..MaxUserListLimit, EUNAVAILABLE when the store
	// cannot be reached.
	ListUsers(ctx context.Context, q UserQuery) (*UserPage, error)
}

type principalKey struct{}

// NewContextWithPrincipal returns a copy of ctx carrying p.
func NewContextWithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFromContext returns the principal carried by ctx, or nil for an
// unauthenticated context.
func PrincipalFromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// NewAccount is an account an administrator creates.
type NewAccount struct {
	Email    string
	Name     string
	Password string
	// Role is RoleAdmin or RoleMember.
	Role string
}

// AccountAdmin is what the console's account views need: listing, role
// changes and account creation for admins, and the sign-up state for the
// sign-in form. Package auth's Service implements it.
type AccountAdmin interface {
	UserLister
	// SetUserRole changes a user's role, for the admin principal in ctx.
	// Returns EFORBIDDEN when ctx carries no admin principal (or an admin
	// would demote themselves), EINVALID for an unknown role, ENOTFOUND for
	// an unknown user, EUNAVAILABLE when the store cannot be reached.
	SetUserRole(ctx context.Context, userID, role string) error
	// CreateAccount creates an account with the sign-up rules (valid
	// email, 8–128 character password), for the admin principal in ctx,
	// whatever the sign-up policy. Returns EFORBIDDEN when ctx carries no
	// admin principal, EINVALID for bad input, ECONFLICT when the email is
	// taken, EUNAVAILABLE when the store cannot be reached.
	CreateAccount(ctx context.Context, a NewAccount) (*User, error)
	// SignupOpen reports whether anyone may sign up.
	SignupOpen() bool
	// HasUsers reports whether any account exists. Returns EUNAVAILABLE
	// when the store cannot be reached.
	HasUsers(ctx context.Context) (bool, error)
}
