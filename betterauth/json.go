package betterauth

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/auth"
)

// apiError is an error in Better Auth's shape: {"message","code"}.
type apiError struct {
	status  int
	code    string // "" for the rate limiter's code-less body
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

// Better Auth's error codes and messages.
var (
	errInvalidOrigin        = &apiError{http.StatusForbidden, "INVALID_ORIGIN", "Invalid origin"}
	errMissingOrigin        = &apiError{http.StatusForbidden, "MISSING_OR_NULL_ORIGIN", "Missing or null Origin"}
	errCrossSiteNavigation  = &apiError{http.StatusForbidden, "CROSS_SITE_NAVIGATION_LOGIN_BLOCKED", "Cross-site navigation login blocked. This request appears to be a CSRF attack."}
	errInvalidCallbackURL   = &apiError{http.StatusForbidden, "INVALID_CALLBACK_URL", "Invalid callbackURL"}
	errInvalidCredentials   = &apiError{http.StatusUnauthorized, "INVALID_EMAIL_OR_PASSWORD", "Invalid email or password"}
	errInvalidEmail         = &apiError{http.StatusBadRequest, "INVALID_EMAIL", "Invalid email"}
	errPasswordTooShort     = &apiError{http.StatusBadRequest, "PASSWORD_TOO_SHORT", "Password too short"}
	errPasswordTooLong      = &apiError{http.StatusBadRequest, "PASSWORD_TOO_LONG", "Password too long"}
	errUserExists           = &apiError{http.StatusUnprocessableEntity, "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL", "User already exists. Use another email."}
	errSignUpDisabled       = &apiError{http.StatusBadRequest, "EMAIL_PASSWORD_SIGN_UP_DISABLED", "Email and password sign up is not enabled"}
	errPostGetSession       = &apiError{http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED_DEFER_SESSION_REQUIRED", "POST method requires deferSessionRefresh to be enabled in session config"}
	errTooManyRequests      = &apiError{http.StatusTooManyRequests, "", "Too many requests. Please try again later."}
	errBodyTooLarge         = &apiError{http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE", "Request body is too large"}
	errInternal             = &apiError{http.StatusInternalServerError, "INTERNAL_SERVER_ERROR", "Internal server error"}
	errUnavailable          = &apiError{http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", "Service unavailable, try again later"}
	errFailedCreateUser     = &apiError{http.StatusUnprocessableEntity, "FAILED_TO_CREATE_USER", "Failed to create user"}
	errFailedCreateSession  = &apiError{http.StatusInternalServerError, "FAILED_TO_CREATE_SESSION", "Failed to create session"}
	errInvalidJSON          = &apiError{http.StatusBadRequest, "VALIDATION_ERROR", "Invalid JSON body"}
	errUnsupportedMediaType = func(ct string) *apiError {
		return &apiError{http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE",
			`Content-Type "` + ct + `" is not allowed. Allowed types: application/x-www-form-urlencoded, application/json`}
	}
)

// validationError is Better Auth's 400 for a body field failing its schema.
func validationError(field, problem string) *apiError {
	return &apiError{http.StatusBadRequest, "VALIDATION_ERROR", "[body." + field + "] " + problem}
}

// writeJSON writes v with the exact Content-Type Better Auth sends.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"message":"Internal server error","code":"INTERNAL_SERVER_ERROR"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b) // a client that went away cannot be told; nothing to do
}

func writeAPIError(w http.ResponseWriter, e *apiError) {
	if e.code == "" {
		writeJSON(w, e.status, map[string]string{"message": e.message})
		return
	}
	writeJSON(w, e.status, struct {
		Message string `json:"message"`
		Code    string `json:"code"`
	}{e.message, e.code})
}

// jsTime formats t as JavaScript's Date.toJSON: UTC, milliseconds.
type jsTime time.Time

func (t jsTime) MarshalJSON() ([]byte, error) {
	b := append([]byte{'"'}, cairn.AppendTime(nil, time.Time(t))...)
	return append(b, '"'), nil
}

// userJSON is a user as Better Auth returns it, plus the admin plugin's role.
type userJSON struct {
	Name          string  `json:"name"`
	Email         string  `json:"email"`
	EmailVerified bool    `json:"emailVerified"`
	Image         *string `json:"image"`
	CreatedAt     jsTime  `json:"createdAt"`
	UpdatedAt     jsTime  `json:"updatedAt"`
	Role          string  `json:"role"`
	ID            string  `json:"id"`
}

func toUserJSON(u *cairn.User) userJSON {
	j := userJSON{Name: u.Name, Email: u.Email, EmailVerified: u.EmailVerified,
		CreatedAt: jsTime(u.CreatedAt), UpdatedAt: jsTime(u.UpdatedAt), Role: auth.RoleOf(u), ID: u.ID}
	if u.Image != "" {
		img := u.Image
		j.Image = &img
	}
	return j
}

// sessionJSON is a session as Better Auth returns it.
type sessionJSON struct {
	ExpiresAt jsTime `json:"expiresAt"`
	Token     string `json:"token"`
	CreatedAt jsTime `json:"createdAt"`
	UpdatedAt jsTime `json:"updatedAt"`
	IPAddress string `json:"ipAddress"`
	UserAgent string `json:"userAgent"`
	UserID    string `json:"userId"`
	ID        string `json:"id"`
}

func toSessionJSON(s *cairn.Session) sessionJSON {
	return sessionJSON{ExpiresAt: jsTime(s.ExpiresAt), Token: s.Token, CreatedAt: jsTime(s.CreatedAt),
		UpdatedAt: jsTime(s.UpdatedAt), IPAddress: s.IPAddress, UserAgent: s.UserAgent, UserID: s.UserID, ID: s.ID}
}

type sessionResponse struct {
	Session sessionJSON `json:"session"`
	User    userJSON    `json:"user"`
}

// SessionBody returns sess and its user in the shape of Better Auth's
// GET /api/auth/get-session answer ({"session":…,"user":…}, times as
// JavaScript's Date.toJSON), ready for encoding/json. Cairn's own
// GET /session answers it, so that a frontend reads one shape.
func (h *Handler) SessionBody(sess *cairn.Session, user *cairn.User) any {
	return sessionResponse{toSessionJSON(sess), toUserJSON(user)}
}
