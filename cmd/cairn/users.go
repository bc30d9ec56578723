package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/auth"
	"golang.org/x/term"
)

// runUsers manages accounts: "users create" and "users list". The embedded
// store can be opened only while the server is stopped.
func runUsers(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	const usage = "usage: cairn users create --email E --name N [--admin] (password on stdin or prompted) | list | set-role --email E --role admin|member"
	if len(args) == 0 {
		return &configError{usage}
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stderr, usage+"\n\nRun 'cairn users <create|list|set-role> -h' for a command's flags.")
		return flag.ErrHelp
	case "create":
		return runUsersCreate(ctx, args[1:], stdin, stdout, stderr)
	case "list":
		return runUsersList(ctx, args[1:], stdout, stderr)
	case "set-role":
		return runUsersSetRole(ctx, args[1:], stdout, stderr)
	default:
		return &configError{fmt.Sprintf("unknown users command %q (create, list, set-role)", args[0])}
	}
}

func runUsersCreate(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var email, name string
	var admin bool
	cfg, err := loadConfig("users create", args, os.Getenv, ".env", stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&email, "email", "", "the account's email (required)")
		fs.StringVar(&name, "name", "", "the account's display name (required)")
		fs.BoolVar(&admin, "admin", false, "give the account the admin role")
	})
	if err != nil {
		return err
	}
	if email == "" || name == "" {
		return &configError{"--email and --name are required"}
	}
	password, err := readPassword(stdin, stderr, true)
	if err != nil {
		return err
	}
	store, closeStore, err := openOfflineAs[cairn.AuthStore](ctx, cfg, stderr, "accounts")
	if err != nil {
		return err
	}
	defer closeStore()
	role := cairn.RoleMember
	if admin {
		role = cairn.RoleAdmin
	}
	u, err := auth.CreateUser(ctx, store, email, name, password, role, time.Now())
	if err != nil {
		if code := cairn.ErrorCode(err); code == cairn.EINVALID || code == cairn.ECONFLICT {
			return errors.New(cairn.ErrorMessage(err))
		}
		return err
	}
	fmt.Fprintf(stdout, "created %s %s (id %s)\n", u.Role, u.Email, u.ID)
	return nil
}

func runUsersList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig("users list", args, os.Getenv, ".env", stderr, nil)
	if err != nil {
		return err
	}
	store, closeStore, err := openOfflineAs[cairn.AuthStore](ctx, cfg, stderr, "accounts")
	if err != nil {
		return err
	}
	defer closeStore()
	q := cairn.UserQuery{Limit: cairn.MaxUserListLimit}
	for {
		page, err := store.ListUsers(ctx, q)
		if err != nil {
			return fmt.Errorf("list users: %w", err)
		}
		for _, u := range page.Users {
			role := u.Role
			if role == "" {
				role = cairn.RoleMember
			}
			fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\n", u.ID, role, u.Email, u.Name)
		}
		if page.Next == nil {
			return nil
		}
		q.After = page.Next
	}
}

// runUsersSetRole makes an existing account admin or member, e.g. a user
// migrated from the seed's database, which has no role.
func runUsersSetRole(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var email, role string
	cfg, err := loadConfig("users set-role", args, os.Getenv, ".env", stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&email, "email", "", "the account's email (required)")
		fs.StringVar(&role, "role", "", "admin or member (required)")
	})
	if err != nil {
		return err
	}
	if email == "" || (role != cairn.RoleAdmin && role != cairn.RoleMember) {
		return &configError{"--email and --role admin|member are required"}
	}
	store, closeStore, err := openOfflineAs[cairn.AuthStore](ctx, cfg, stderr, "accounts")
	if err != nil {
		return err
	}
	defer closeStore()
	u, err := store.UserByEmail(ctx, strings.ToLower(strings.TrimSpace(email)))
	if cairn.ErrorCode(err) == cairn.ENOTFOUND {
		return fmt.Errorf("no account with email %s", email)
	} else if err != nil {
		return err
	}
	if err := store.SetUserRole(ctx, u.ID, role, time.Now().UTC().Truncate(time.Millisecond)); err != nil {
		return fmt.Errorf("set role: %w", err)
	}
	fmt.Fprintf(stdout, "%s is now %s\n", u.Email, role)
	return nil
}

// readPassword reads a password from a terminal without echo (with
// confirm, twice, and both must match), or else as the first line of
// stdin. It is never taken from the command line, where other users could
// see it.
func readPassword(stdin io.Reader, stderr io.Writer, confirm bool) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		prompt := func(label string) (string, error) {
			fmt.Fprint(stderr, label)
			p, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(stderr)
			if err != nil {
				return "", fmt.Errorf("read password: %w", err)
			}
			return string(p), nil
		}
		p1, err := prompt("Password: ")
		if err != nil || !confirm {
			return p1, err
		}
		p2, err := prompt("Repeat password: ")
		if err != nil {
			return "", err
		}
		if p1 != p2 {
			return "", errors.New("the passwords differ")
		}
		return p1, nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", errors.New("no password on stdin (pipe it in, or run in a terminal to be prompted)")
	}
	return line, nil
}
