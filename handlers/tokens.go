package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"doorman/apitoken"
	"doorman/db"
	"doorman/displayname"
	"doorman/mails"
	"doorman/paths"
	"doorman/sessiontoken"
	"doorman/views"
)

// tokenLifetimes are the only expiries a personal access token may have:
// expiry is mandatory, so a forgotten token dies on its own.
var tokenLifetimes = map[string]int{"7": 7, "30": 30, "90": 90, "365": 365}

// tokenRows are the view rows of tokens.
func (a *app) tokenRows(tokens []db.Token, now time.Time) []views.TokenRow {
	rows := make([]views.TokenRow, 0, len(tokens))
	for _, t := range tokens {
		r := views.TokenRow{
			ID: t.ID, Name: t.Name, Scopes: scopesLabel(t.Scopes),
			Created: exactTime(t.CreatedAt), CreatedISO: isoTime(t.CreatedAt),
			Expires: exactTime(t.ExpiresAt), ExpiresISO: isoTime(t.ExpiresAt),
			LastUsed:  "Never used",
			RevokeURL: paths.TokenRevoke(t.ID), RevokeLabel: "Revoke " + t.Name,
			DialogID: "revoke-token-" + t.ID, DialogHeading: "Revoke “" + t.Name + "”?",
		}
		if t.Kind == db.TokenApp {
			r.RevokeLabel, r.DialogHeading = "Disconnect "+t.Name, "Disconnect “"+t.Name+"”?"
		}
		if !t.LastUsedAt.IsZero() {
			r.LastUsed, r.LastUsedISO = relTime(now, t.LastUsedAt), isoTime(t.LastUsedAt)
			if t.LastUsedLocation != "" {
				r.LastUsedWhere = " from " + t.LastUsedLocation
			}
		}
		rows = append(rows, r)
	}
	return rows
}

func scopesLabel(scopes []string) string {
	if len(scopes) == 0 {
		return "No access"
	}
	return strings.Join(scopes, ", ")
}

// tokensPage lists the user's personal access tokens with a form for a new one.
func (a *app) tokensPage(c echo.Context) error {
	return a.renderTokens(c, http.StatusOK, views.TokensProps{ExpiresInDays: "30", ScopeRead: true})
}

func (a *app) renderTokens(c echo.Context, status int, p views.TokensProps) error {
	au, now := authOf(c), a.now()
	list, err := a.store.ListTokens(c.Request().Context(), au.User.ID, db.TokenPersonal, now)
	if err != nil {
		return fmt.Errorf("tokens page: %w", err)
	}
	p.Page = a.page(c, "Access tokens", "security")
	p.Tokens = a.tokenRows(list, now)
	p.NeedPassword = !a.inSudo(au)
	return a.render(c, status, views.TokensPage(p))
}

// createToken makes a personal access token (the password is always asked:
// a token outlives the session) and shows it, once.
func (a *app) createToken(c echo.Context) error {
	au := authOf(c)
	r := c.Request()
	if err := r.ParseForm(); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest)
	}
	// The name is shown on the Security page and in its dialogs: stored
	// without control or format characters (displayname.Clean).
	rawName := formValue(c, "name")
	p := views.TokensProps{Name: displayname.Clean(rawName), ExpiresInDays: formValue(c, "expires_in_days")}
	var scopes []string
	for _, s := range r.PostForm["scope"] {
		switch s {
		case ScopeSessionsRead:
			p.ScopeRead = true
		case ScopeSessionsWrite:
			p.ScopeWrite = true
		default:
			p.ScopeError = "Choose from the scopes listed."
		}
	}
	for _, s := range AllScopes { // stored in a fixed order
		if (s == ScopeSessionsRead && p.ScopeRead) || (s == ScopeSessionsWrite && p.ScopeWrite) {
			scopes = append(scopes, s)
		}
	}
	switch {
	case p.Name == "" && strings.TrimSpace(rawName) != "":
		p.NameError = "Use visible characters: this name has only invisible or control characters."
	case p.Name == "":
		p.NameError = "Give the token a name."
	case utf8.RuneCountInString(p.Name) > 100:
		p.NameError = "Use at most 100 characters."
	}
	days, ok := tokenLifetimes[p.ExpiresInDays]
	if !ok {
		p.ExpiresError, p.ExpiresInDays = "Choose when the token expires.", "30"
	}
	if len(scopes) == 0 && p.ScopeError == "" {
		p.ScopeError = "Choose at least one scope."
	}
	if p.NameError != "" || p.ExpiresError != "" || p.ScopeError != "" {
		return a.renderTokens(c, http.StatusUnprocessableEntity, p)
	}
	if g := a.confirmPassword(c, au, "password"); !g.passed() {
		return g.refuse(func(problem *passwordProblem) error {
			p.PasswordError = problem.text
			return a.renderTokens(c, problem.status, p)
		})
	}
	now := a.now()
	tok := apitoken.New(apitoken.PersonalPrefix)
	ip := a.clientIP(r)
	// The owner hears of every token: it outlives the session that made it.
	notice := a.securityNotice(c, au.User, paths.Security, func(to string, w mails.Where, pageURL string) db.Mail {
		return a.mails.TokenCreated(to, p.Name, w, pageURL)
	})
	err := a.store.CreateToken(r.Context(), db.Token{
		ID: tok.ID, SecretHash: tok.Hash, UserID: au.User.ID, Kind: db.TokenPersonal, Name: p.Name, Scopes: scopes,
		CreatedAt: now, ExpiresAt: now.Add(time.Duration(days) * 24 * time.Hour),
		CreatedIP: ip.String(), CreatedLocation: a.geo.Lookup(ip).Label,
	}, au.User.Epoch, notice...)
	if errors.Is(err, db.ErrSignInsReset) {
		return errSignInsReset()
	}
	if err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	a.kickMail(notice)
	a.log.Info("token created", "token", tok.ID, "user", au.User.ID, "session", au.Session.ID, "scopes", strings.Join(scopes, " "), "days", days)
	// The email issue's seam: a mail a few days before a token expires
	// reads ListTokens' ExpiresAt.
	return a.renderTokens(c, http.StatusOK, views.TokensProps{NewToken: tok.Value, NewTokenName: p.Name, ExpiresInDays: "30", ScopeRead: true})
}

// tokenParam is the :id of a token URL, refused early when malformed.
func tokenParam(c echo.Context) (string, error) {
	id := c.Param("id")
	if len(id) != sessiontoken.IDLen || !sessiontoken.ValidID(id) {
		return "", errNoSuchToken()
	}
	return id, nil
}

func errNoSuchToken() error {
	return echo.NewHTTPError(http.StatusNotFound, "There is no such token, or it was already revoked.")
}

// revokeToken ends a token or disconnects an app (the trash icon): GET is
// the confirm page, POST ends it, inside the sudo window or with the
// password. Another user's token is a 404 and nothing changes.
func (a *app) revokeToken(c echo.Context) error {
	id, err := tokenParam(c)
	if err != nil {
		return err
	}
	au, now := authOf(c), a.now()
	tok, _, err := a.store.TokenWithUser(c.Request().Context(), id)
	if errors.Is(err, db.ErrNotFound) || (err == nil && (tok.UserID != au.User.ID || !tok.Alive(now))) {
		return errNoSuchToken()
	}
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	verb, back := "Revoke", paths.Tokens
	if tok.Kind == db.TokenApp {
		verb, back = "Disconnect", paths.Security
	}
	confirm := func(problem *passwordProblem) error {
		return a.renderConfirm(c, views.ConfirmProps{
			Page: a.page(c, verb+" "+tok.Name, "security"), Heading: verb + " “" + tok.Name + "”?",
			Message: "It stops working at once: the next request with it is refused.",
			Action:  paths.TokenRevoke(id), Button: verb, CancelURL: back,
		}, au, problem)
	}
	if c.Request().Method == http.MethodGet {
		return confirm(nil)
	}
	if g := a.reauthenticate(c, au, "password"); !g.passed() {
		return g.refuse(confirm)
	}
	_, err = a.account.EndToken(c.Request().Context(), au.User.ID, tok, db.ReasonTokenRevoked, au.Session.ID)
	if errors.Is(err, db.ErrNotFound) {
		return errNoSuchToken()
	}
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	if tok.Kind == db.TokenApp {
		a.addFlash(c, flashSuccess, "Disconnected "+tok.Name+".")
	} else {
		a.addFlash(c, flashSuccess, "Revoked "+tok.Name+".")
	}
	return c.Redirect(http.StatusSeeOther, back)
}

// inventory is the user's live connected apps and personal access tokens.
func (a *app) inventory(c echo.Context, userID int64, now time.Time) (apps, pats []db.Token, err error) {
	all, err := a.store.ListTokens(c.Request().Context(), userID, "", now)
	if err != nil {
		return nil, nil, err
	}
	apps, pats = splitTokens(all)
	return apps, pats, nil
}

// inventoryCounts counts what ending "apps and tokens" ends: connected
// apps (command-line ones, and those signed in to with Doorman: their
// grants end and they are told to sign the person out) and personal
// access tokens.
func (a *app) inventoryCounts(c echo.Context, userID int64, now time.Time) (apps, pats int, err error) {
	tokenApps, tokenPats, err := a.inventory(c, userID, now)
	if err != nil {
		return 0, 0, err
	}
	apps, pats = len(tokenApps), len(tokenPats)
	if a.apps != nil {
		signIns, err := a.apps.ConnectedApps(c.Request().Context(), userID, now)
		if err != nil {
			return 0, 0, err
		}
		apps += len(signIns)
	}
	return apps, pats, nil
}

// inventoryLabel counts apps and tokens for a sentence ("1 connected app
// and 2 access tokens"); "" when there are none.
// splitTokens sorts tokens into connected apps' and personal ones.
func splitTokens(all []db.Token) (apps, pats []db.Token) {
	for _, t := range all {
		if t.Kind == db.TokenApp {
			apps = append(apps, t)
		} else {
			pats = append(pats, t)
		}
	}
	return apps, pats
}

func inventoryLabel(apps, pats int) string {
	var parts []string
	if apps > 0 {
		parts = append(parts, plural(apps, "connected app"))
	}
	if pats > 0 {
		parts = append(parts, plural(pats, "access token"))
	}
	return strings.Join(parts, " and ")
}
