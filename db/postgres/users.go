package postgres

import (
	"time"

	"github.com/jackc/pgx/v5"

	"doorman/db"
)

// The users' methods are written once, in db/sqlstore; these stay for this
// package's methods still reading users (mail, tokens) until they move too.

const userColumns = `id, email, password_hash, created_at, is_demo, disabled_at, epoch, email_verified_at, sign_in_alerts_off`

func scanUser(row pgx.Row) (db.User, error) {
	var u db.User
	var created int64
	var disabled, verified *int64
	err := row.Scan(&u.ID, &u.Email, &u.PasswordHash, &created, &u.IsDemo, &disabled, &u.Epoch, &verified, &u.SignInAlertsOff)
	u.CreatedAt = time.Unix(created, 0)
	u.DisabledAt, u.EmailVerifiedAt = optionalTime(disabled), optionalTime(verified)
	return u, err
}

// optionalTime reads a nullable time column: NULL is the zero time.
func optionalTime(at *int64) time.Time {
	if at == nil {
		return time.Time{}
	}
	return time.Unix(*at, 0)
}
