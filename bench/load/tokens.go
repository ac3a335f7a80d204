package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"time"

	"doorman/apitoken"
	"doorman/db"
	"doorman/storage"
)

// makeTokens gives each of the seeded users emails perUser personal access
// tokens (read scope, 30 days), before the server starts, and writes their
// values, one a line, to path. The GET /api/v1/me phase spreads its load
// over all of them, as many clients would, so the token check reads many
// rows; the server runs with -api-token-rate 0 (startServer), so it
// measures the token check and not the limiter's refusals (before that
// flag, 15,000 tokens kept each under the default 10 a second). They are not the page phases' users, whose
// Security page would otherwise list the tokens too.
func makeTokens(dbPath, path string, emails []string, perUser int) (int, error) {
	ctx := context.Background()
	store, err := storage.Open(ctx, dbPath, db.Options{Existing: true})
	if err != nil {
		return 0, err
	}
	defer store.Close()
	now := time.Now()
	var out bytes.Buffer
	n := 0
	for _, email := range emails {
		account, err := store.UserByEmail(ctx, email)
		if err != nil {
			return n, fmt.Errorf("tokens: %s: %w", email, err)
		}
		for range perUser {
			t := apitoken.New(apitoken.PersonalPrefix)
			if err := store.CreateToken(ctx, db.Token{ID: t.ID, SecretHash: t.Hash, UserID: account.ID, Kind: db.TokenPersonal,
				Name: "load", Scopes: []string{"sessions:read"}, CreatedAt: now, ExpiresAt: now.Add(30 * 24 * time.Hour)}, account.Epoch); err != nil {
				return n, fmt.Errorf("tokens: %w", err)
			}
			fmt.Fprintln(&out, t.Value)
			n++
		}
	}
	return n, os.WriteFile(path, out.Bytes(), 0o600)
}
