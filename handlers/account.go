package handlers

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"doorman/views"
)

// settings is the settings home.
func (a *app) settings(c echo.Context) error {
	au := authOf(c)
	list, err := a.store.ListSessions(c.Request().Context(), au.User.ID, a.now())
	if err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	return a.render(c, http.StatusOK, views.SettingsPage(views.SettingsProps{
		Page:         a.page(c, "Settings", "account"),
		Email:        au.User.Email,
		MemberSince:  au.User.CreatedAt.UTC().Format("2 January 2006"),
		SessionCount: "Signed in on " + plural(len(list), "device"),
	}))
}
