package console

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/cairn-dev/cairn"
)

// accountsData is the Accounts page.
type accountsData struct {
	Users   []cairn.User
	NextURL string
	Form    cairn.NewAccount
	Roles   []string
}

// accountsPage serves /console/accounts (admins): the accounts, a role
// control per account, and the create-account form.
func (c *Console) accountsPage(_ http.ResponseWriter, r *http.Request, v *view) (string, int, error) {
	return c.renderAccounts(r, v, cairn.NewAccount{Role: cairn.RoleMember}, http.StatusOK)
}

func (c *Console) renderAccounts(r *http.Request, v *view, form cairn.NewAccount, status int) (string, int, error) {
	if c.cfg.Accounts == nil {
		return "", 0, cairn.Errorf(cairn.ENOTFOUND, "Accounts are not managed by this server.")
	}
	q := cairn.UserQuery{Limit: 100}
	if cur := r.URL.Query().Get("cursor"); cur != "" {
		after, err := cairn.DecodeUserCursor(cur)
		if err != nil {
			return "", 0, err
		}
		q.After = after
	}
	page, err := c.cfg.Accounts.ListUsers(r.Context(), q)
	if err != nil {
		return "", 0, err
	}
	d := accountsData{Users: page.Users, Form: form, Roles: []string{cairn.RoleMember, cairn.RoleAdmin}}
	for i := range d.Users {
		if d.Users[i].Role == "" {
			d.Users[i].Role = cairn.RoleMember
		}
	}
	if page.Next != nil {
		d.NextURL = "/console/accounts?" + url.Values{"cursor": {page.Next.Encode()}}.Encode()
	}
	v.Title, v.Nav, v.Data = "Accounts", "accounts", d
	return "accounts", status, nil
}

// createAccount serves POST /console/accounts: create, then back to the
// list (303), or the form again with the error.
func (c *Console) createAccount(w http.ResponseWriter, r *http.Request, v *view) (string, int, error) {
	if c.cfg.Accounts == nil {
		return "", 0, cairn.Errorf(cairn.ENOTFOUND, "Accounts are not managed by this server.")
	}
	form := cairn.NewAccount{
		Email:    strings.TrimSpace(r.PostFormValue("email")),
		Name:     strings.TrimSpace(r.PostFormValue("name")),
		Password: r.PostFormValue("password"),
		Role:     r.PostFormValue("role"),
	}
	u, err := c.cfg.Accounts.CreateAccount(r.Context(), form)
	if err != nil {
		switch cairn.ErrorCode(err) {
		case cairn.EINVALID, cairn.ECONFLICT:
			v.Error = "Could not create the account: " + cairn.ErrorMessage(err)
			form.Password = ""
			return c.renderAccounts(r, v, form, http.StatusBadRequest)
		}
		return "", 0, err
	}
	http.Redirect(w, r, "/console/accounts?"+url.Values{"notice": {"Created " + u.Email + " (" + u.Role + ")."}}.Encode(), http.StatusSeeOther)
	return "", 0, nil
}

// updateAccount serves POST /console/accounts/{id}: change the role.
func (c *Console) updateAccount(w http.ResponseWriter, r *http.Request, v *view) (string, int, error) {
	if c.cfg.Accounts == nil {
		return "", 0, cairn.Errorf(cairn.ENOTFOUND, "Accounts are not managed by this server.")
	}
	role := r.PostFormValue("role")
	if err := c.cfg.Accounts.SetUserRole(r.Context(), r.PathValue("id"), role); err != nil {
		switch cairn.ErrorCode(err) {
		case cairn.EINVALID, cairn.EFORBIDDEN, cairn.ENOTFOUND:
			v.Error = "Could not change the role: " + cairn.ErrorMessage(err)
			return c.renderAccounts(r, v, cairn.NewAccount{Role: cairn.RoleMember}, http.StatusBadRequest)
		}
		return "", 0, err
	}
	email := r.PostFormValue("email")
	http.Redirect(w, r, "/console/accounts?"+url.Values{"notice": {"Role of " + email + " is now " + role + "."}}.Encode(), http.StatusSeeOther)
	return "", 0, nil
}
