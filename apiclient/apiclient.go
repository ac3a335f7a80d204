// Package apiclient is the command line's side of the API: `doorman login`
// signs in through the device flow (RFC 8628, with golang.org/x/oauth2, as
// any standard client would) and keeps the token in the user's config
// directory (0600); `doorman sessions list` and `doorman sessions revoke ID`
// (without --user: that is the operator's form) call the API with it.
package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/oauth2"

	"doorman/timefmt"
)

// Usage is the client commands' help.
const Usage = `usage:
  doorman login --server URL --client-id ID   sign this command line in (device flow)
  doorman logout                              forget the saved token
  doorman sessions list                       your sessions, through the API
  doorman sessions revoke ID                  sign one out, through the API
`

// credentials is what login keeps.
type credentials struct {
	Server      string    `json:"server"`
	AccessToken string    `json:"access_token"`
	Scope       string    `json:"scope"`
	Expiry      time.Time `json:"expiry"`
}

// configPath is where the token is kept: $XDG_CONFIG_HOME/doorman (or the
// platform's config directory) / credentials.json.
func configPath(getenv func(string) string) (string, error) {
	if dir := getenv("DOORMAN_CONFIG_DIR"); dir != "" {
		return filepath.Join(dir, "credentials.json"), nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no config directory: %w (set DOORMAN_CONFIG_DIR)", err)
	}
	return filepath.Join(dir, "doorman", "credentials.json"), nil
}

// Run runs a client command: args[0] is "login", "logout" or "sessions".
func Run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, httpClient *http.Client) error {
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 30 * time.Second}
	}
	switch args[0] {
	case "login":
		return login(ctx, args[1:], getenv, stdout, httpClient)
	case "logout":
		path, err := configPath(getenv)
		if err != nil {
			return err
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		fmt.Fprintln(stdout, "Signed out: the saved token is deleted. (Disconnect the app on the Security page to end it on the server too.)")
		return nil
	case "sessions":
		return sessions(ctx, args[1:], getenv, stdout, httpClient)
	}
	return fmt.Errorf("unknown command %q\n%s", args[0], Usage)
}

// metadata is the part of RFC 8414's server metadata login needs.
type metadata struct {
	DeviceAuthorizationEndpoint string `json:"device_authorization_endpoint"`
	TokenEndpoint               string `json:"token_endpoint"`
}

func login(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, hc *http.Client) error {
	fs := flag.NewFlagSet("doorman login", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	server := fs.String("server", getenv("DOORMAN_SERVER"), "the Doorman server's URL (env DOORMAN_SERVER)")
	clientID := fs.String("client-id", getenv("DOORMAN_CLIENT_ID"), "this tool's client_id, from `doorman apps add` (env DOORMAN_CLIENT_ID)")
	scope := fs.String("scope", "sessions:read sessions:write", "the access to ask for")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("login: %w\n%s", err, Usage)
	}
	if *server == "" || *clientID == "" {
		return fmt.Errorf("login: --server and --client-id are required\n%s", Usage)
	}
	base := strings.TrimRight(*server, "/")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
		return fmt.Errorf("login: the server must be an https:// URL (http only on this machine's loopback): %q", *server)
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, hc)
	var md metadata
	if err := getJSON(ctx, hc, base+"/.well-known/oauth-authorization-server", "", &md); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	conf := &oauth2.Config{
		ClientID: *clientID,
		Endpoint: oauth2.Endpoint{DeviceAuthURL: md.DeviceAuthorizationEndpoint, TokenURL: md.TokenEndpoint, AuthStyle: oauth2.AuthStyleInParams},
		Scopes:   strings.Fields(*scope),
	}
	da, err := conf.DeviceAuth(ctx)
	if err != nil {
		return whyNoCode(err, *clientID)
	}
	fmt.Fprintf(stdout, "To sign in, open %s\nand enter the code %s\n(or open %s)\nWaiting for you to approve…\n", da.VerificationURI, da.UserCode, da.VerificationURIComplete)
	tok, err := conf.DeviceAccessToken(ctx, da)
	if err != nil {
		return whyNoToken(ctx, da, err)
	}
	path, err := configPath(getenv)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	scopeGot, _ := tok.Extra("scope").(string)
	data, _ := json.MarshalIndent(credentials{Server: base, AccessToken: tok.AccessToken, Scope: scopeGot, Expiry: tok.Expiry}, "", "  ")
	// Written 0600 through a temporary file: the token never sits in a
	// file others can read, not even for a moment.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".credentials-*")
	if err != nil {
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	fmt.Fprintf(stdout, "Signed in (%s). The token is in %s.\n", scopeGot, path)
	return nil
}

// TimeLayout is how every command prints a time, the operator's too, and
// how the pages and mails write one: always in UTC, with the day and month
// unambiguous (package timefmt).
const TimeLayout = timefmt.Layout

// FormatTime prints t as TimeLayout says.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// Denied is what login says when the person denies the request at /device.
const Denied = "You denied the sign-in in the browser; nothing was saved."

// sentence is an error that is a whole sentence for a person to read, as
// printed (capital letter, full stop).
type sentence string

func (s sentence) Error() string { return string(s) }

// whyNoToken says in words why the device flow ended without a token, and
// what to do: the server's answer (RFC 8628 §3.5) is a code a person
// should not have to decode. The code's expiry usually shows as the
// client's own deadline (x/oauth2 stops polling at the expiry the server
// announced, before the server can say expired_token), not as an answer.
func whyNoToken(ctx context.Context, da *oauth2.DeviceAuthResponse, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		switch re.ErrorCode {
		case "access_denied":
			// The server says which: the person denied it, or an
			// approval died with an account reset (a password change,
			// "Sign out everywhere", …) before the tool picked it up.
			if strings.Contains(re.ErrorDescription, "withdrawn") {
				return sentence("Your approval was withdrawn: the account was reset after it (a password change or \"Sign out everywhere\"); nothing was saved. Run `doorman login` again to start over.")
			}
			return sentence(Denied)
		case "expired_token":
			return sentence("The code expired before it was approved; nothing was saved. Run `doorman login` again for a new one.")
		case "invalid_grant":
			return sentence("The server no longer knows this code (it was already used, or the app was removed); nothing was saved. Run `doorman login` again.")
		}
		return refused(re)
	}
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil && !da.Expiry.IsZero() && !time.Now().Before(da.Expiry) {
		return sentence(fmt.Sprintf("The code expired at %s before it was approved; nothing was saved. Run `doorman login` again for a new one.", FormatTime(da.Expiry)))
	}
	return fmt.Errorf("login: %w", err)
}

// whyNoCode says in words why the server gave no code to enter.
func whyNoCode(err error, clientID string) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		switch re.ErrorCode {
		case "invalid_client":
			return sentence(fmt.Sprintf("The server does not know the client id %q. Register this tool on the server with `doorman apps add --name \"Doorman CLI\"` and use the client_id it prints.", clientID))
		case "invalid_scope":
			return sentence(fmt.Sprintf("The server does not offer the access asked for (--scope). %s", re.ErrorDescription))
		case "slow_down":
			return sentence("The server is refusing sign-ins from this address for a while (too many requests). Try again in a minute.")
		}
		return refused(re)
	}
	return fmt.Errorf("login: %w", err)
}

// refused is any other OAuth error, the server's own words first.
func refused(re *oauth2.RetrieveError) error {
	if re.ErrorDescription != "" {
		return sentence(fmt.Sprintf("The server refused the sign-in (%s): %s", re.ErrorCode, re.ErrorDescription))
	}
	return sentence(fmt.Sprintf("The server refused the sign-in (%s).", re.ErrorCode))
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// saved reads the credentials login kept.
func saved(getenv func(string) string) (credentials, error) {
	var cr credentials
	path, err := configPath(getenv)
	if err != nil {
		return cr, err
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return cr, errors.New("not signed in: run `doorman login --server URL --client-id ID` first")
	}
	if err != nil {
		return cr, err
	}
	if err := json.Unmarshal(data, &cr); err != nil || cr.AccessToken == "" || cr.Server == "" {
		return cr, fmt.Errorf("%s is damaged: run `doorman login` again", path)
	}
	return cr, nil
}

// apiError is a problem+json answer.
type apiError struct {
	Status int    `json:"status"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

func (e *apiError) Error() string {
	if e.Status == http.StatusUnauthorized {
		return "the server refused the saved token (" + e.Detail + "): run `doorman login` again"
	}
	return fmt.Sprintf("%s: %s", e.Title, e.Detail)
}

func call(ctx context.Context, hc *http.Client, method, u, token string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Accept", "application/json")
	res, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return err
	}
	if res.StatusCode >= 400 {
		e := &apiError{Status: res.StatusCode, Title: http.StatusText(res.StatusCode)}
		json.Unmarshal(body, e)
		return e
	}
	if out != nil {
		return json.Unmarshal(body, out)
	}
	return nil
}

func getJSON(ctx context.Context, hc *http.Client, u, token string, out any) error {
	return call(ctx, hc, http.MethodGet, u, token, out)
}

func sessions(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, hc *http.Client) error {
	if len(args) == 0 {
		return fmt.Errorf("sessions: list or revoke?\n%s", Usage)
	}
	cr, err := saved(getenv)
	if err != nil {
		return err
	}
	api := cr.Server + "/api/v1"
	switch {
	case args[0] == "list" && len(args) == 1:
		var out struct {
			Sessions []struct {
				ID, Device, Location, IP string
				LastActiveAt             string `json:"last_active_at"`
				SignedInAt               string `json:"signed_in_at"`
			} `json:"sessions"`
		}
		if err := getJSON(ctx, hc, api+"/sessions", cr.AccessToken, &out); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tDEVICE\tLOCATION\tIP\tLAST ACTIVE\tSIGNED IN")
		for _, s := range out.Sessions {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Device, s.Location, s.IP, apiTime(s.LastActiveAt), apiTime(s.SignedInAt))
		}
		return tw.Flush()
	case args[0] == "revoke" && len(args) == 2:
		if err := call(ctx, hc, http.MethodDelete, api+"/sessions/"+url.PathEscape(args[1]), cr.AccessToken, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Signed out session %s.\n", args[1])
		return nil
	}
	return fmt.Errorf("sessions: unexpected %q\n%s", strings.Join(args, " "), Usage)
}

// apiTime prints one of the API's RFC 3339 times as every command does
// (as sent, should the server send anything else).
func apiTime(v string) string {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return v
	}
	return FormatTime(t)
}
