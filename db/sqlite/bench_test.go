package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	zsqlite "zombiezen.com/go/sqlite"

	"doorman/db"
	"doorman/sessiontoken"
)

// benchUser makes a store holding one user with n live sessions and returns
// it with the user's id and the sessions' ids.
func benchUser(b *testing.B, n int, now time.Time) (*Store, int64, []string) {
	b.Helper()
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(b.TempDir(), "bench.db"), db.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	bulk, err := s.BeginBulk(ctx)
	if err != nil {
		b.Fatal(err)
	}
	uid, err := bulk.AddUser(ctx, "bench@example.com", "x", now)
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, n)
	for i := range n {
		tok := sessiontoken.New()
		ids[i] = tok.ID
		if err := bulk.AddSession(ctx, db.Session{ID: tok.ID, SecretHash: tok.Hash, UserID: uid, CreatedAt: now, LastSeenAt: now,
			IdleExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(2 * time.Hour), IP: "192.0.2.1",
			UserAgent: "Mozilla/5.0", DeviceLabel: "Chrome on Windows", DeviceKind: "desktop",
			Location: "Berlin, Germany", LocationShort: "Berlin", AuthMethod: "bench"}); err != nil {
			b.Fatal(err)
		}
	}
	if err := bulk.Commit(ctx); err != nil {
		b.Fatal(err)
	}
	return s, uid, ids
}

// unrevoke brings every session of the user back, outside the timer.
func unrevoke(b *testing.B, s *Store, uid int64) {
	b.StopTimer()
	if _, err := s.write.Exec(`UPDATE sessions SET revoked_at = NULL, revoked_reason = NULL, revoked_by = NULL WHERE user_id = ?`, uid); err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
}

// BenchmarkRevokeSession ends one session of a user with 100 or 10,000.
func BenchmarkRevokeSession(b *testing.B) {
	now := time.Now()
	for _, n := range []int{100, 10_000} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			s, uid, ids := benchUser(b, n, now)
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i == len(ids)-1 {
					unrevoke(b, s, uid)
					i = 0
				}
				if _, err := s.RevokeSession(ctx, uid, ids[i], db.ReasonRevoked, ids[len(ids)-1], now); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkRevokeOtherSessions is "Sign out all other sessions" for a user
// with 100 or 10,000.
func BenchmarkRevokeOtherSessions(b *testing.B) {
	now := time.Now()
	for _, n := range []int{100, 10_000} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			s, uid, ids := benchUser(b, n, now)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				got, err := s.RevokeOtherSessions(ctx, uid, ids[0], db.ReasonRevokedOthers, now)
				if err != nil || len(got) != n-1 {
					b.Fatalf("RevokeOtherSessions = %d, %v", len(got), err)
				}
				unrevoke(b, s, uid)
			}
		})
	}
}

// BenchmarkListSessions compares the list as pages read it (summaries) with
// every column, for a user with 10 live sessions; then with 10,000 more that
// were revoked, which the partial index keeps out of the way.
func BenchmarkListSessions(b *testing.B) {
	now := time.Now()
	s, uid, _ := benchUser(b, 10, now)
	ctx := context.Background()
	defer b.Run("summaries-after-10k-revoked", func(b *testing.B) {
		b.StopTimer()
		for range 10_000 {
			tok := sessiontoken.New()
			if _, err := s.CreateSession(ctx, db.Session{ID: tok.ID, SecretHash: tok.Hash, UserID: uid, CreatedAt: now, LastSeenAt: now,
				IdleExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(2 * time.Hour), AuthMethod: "bench"}, 0, 0); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := s.write.Exec(`UPDATE sessions SET revoked_at = 1 WHERE auth_method = 'bench' AND ip = ''`); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for b.Loop() {
			list, err := s.ListSessionSummaries(ctx, uid, now)
			if err != nil || len(list) != 10 {
				b.Fatal(len(list), err)
			}
		}
	})
	b.Run("summaries", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.ListSessionSummaries(ctx, uid, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("every-column", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.ListSessions(ctx, uid, now); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkReadFloor is what one read costs through database/sql and the
// pure-Go driver, from nothing to the session check: "select-1" touches no
// table (the floor every query pays: the pool, the driver's statement and
// rows objects, SQLite's VM and its mutexes); "one-column" is an indexed
// read of one column of one session; "session-check" is SessionWithUser,
// the 26-column join every request makes.
func BenchmarkReadFloor(b *testing.B) {
	now := time.Now()
	s, _, ids := benchUser(b, 10, now)
	ctx := context.Background()
	for _, q := range []struct{ name, sql string }{
		{"select-1", `SELECT 1`},
		{"one-column", `SELECT user_id FROM sessions WHERE id = ?`},
	} {
		b.Run(q.name, func(b *testing.B) {
			stmt, err := s.read.PrepareContext(ctx, q.sql)
			if err != nil {
				b.Fatal(err)
			}
			defer stmt.Close()
			var args []any
			if q.name != "select-1" {
				args = []any{ids[0]}
			}
			b.ReportAllocs()
			for b.Loop() {
				var v int64
				if err := stmt.QueryRowContext(hot(ctx), args...).Scan(&v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("session-check", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := s.SessionWithUser(ctx, ids[0]); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The same read without database/sql: zombiezen.com/go/sqlite (SQLite's
	// statement API on the same modernc SQLite and file), one connection
	// held, the statement prepared once, each column read into its field
	// without boxing, the session and user built as SessionWithUser builds
	// them. Measured, not built (issue 26: the hot reads without
	// database/sql); its pool's take and put (~15 µs) are not in it.
	b.Run("session-check-zombiezen", func(b *testing.B) {
		var path string
		if err := s.read.QueryRowContext(ctx, `SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&path); err != nil {
			b.Fatal(err)
		}
		conn, err := zsqlite.OpenConn(path, zsqlite.OpenReadOnly)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		stmt := conn.Prep(`SELECT s.id, s.secret_hash, s.user_id, s.created_at, s.last_seen_at, s.idle_expires_at,
			s.absolute_expires_at, s.ip, s.user_agent, s.device_label, s.device_kind, s.location, s.location_short,
			s.auth_method, s.reauth_at, s.revoked_at, s.revoked_reason, s.revoked_by, s.refused_count, s.last_refused_at,
			u.email, u.created_at, u.is_demo, u.disabled_at, u.email_verified_at, u.sign_in_alerts_off, u.epoch
			FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?`)
		opt := func(col int) time.Time {
			if stmt.ColumnType(col) == zsqlite.TypeNull {
				return time.Time{}
			}
			return time.Unix(stmt.ColumnInt64(col), 0)
		}
		b.ReportAllocs()
		for b.Loop() {
			stmt.BindText(1, ids[0])
			ok, err := stmt.Step()
			if err != nil || !ok {
				b.Fatal(ok, err)
			}
			var ss db.Session
			var u db.User
			ss.ID = stmt.ColumnText(0)
			ss.SecretHash = make([]byte, stmt.ColumnLen(1))
			stmt.ColumnBytes(1, ss.SecretHash)
			ss.UserID = stmt.ColumnInt64(2)
			ss.CreatedAt, ss.LastSeenAt = time.Unix(stmt.ColumnInt64(3), 0), time.Unix(stmt.ColumnInt64(4), 0)
			ss.IdleExpiresAt, ss.AbsoluteExpiresAt = time.Unix(stmt.ColumnInt64(5), 0), time.Unix(stmt.ColumnInt64(6), 0)
			ss.IP, ss.UserAgent, ss.DeviceLabel, ss.DeviceKind = stmt.ColumnText(7), stmt.ColumnText(8), stmt.ColumnText(9), stmt.ColumnText(10)
			ss.Location, ss.LocationShort, ss.AuthMethod = stmt.ColumnText(11), stmt.ColumnText(12), stmt.ColumnText(13)
			ss.ReauthAt, ss.RevokedAt = time.Unix(stmt.ColumnInt64(14), 0), opt(15)
			ss.RevokedReason, ss.RevokedBy = stmt.ColumnText(16), stmt.ColumnText(17)
			ss.RefusedCount, ss.LastRefusedAt = stmt.ColumnInt(18), opt(19)
			u.ID, u.Email, u.CreatedAt, u.IsDemo = ss.UserID, stmt.ColumnText(20), time.Unix(stmt.ColumnInt64(21), 0), stmt.ColumnBool(22)
			u.DisabledAt, u.EmailVerifiedAt = opt(23), opt(24)
			u.SignInAlertsOff, u.Epoch = stmt.ColumnBool(25), stmt.ColumnInt64(26)
			if err := stmt.Reset(); err != nil {
				b.Fatal(err)
			}
			if ss.ID != ids[0] || u.Email != "bench@example.com" || len(ss.SecretHash) != 32 {
				b.Fatalf("read %+v %+v", ss, u)
			}
		}
	})
}

// BenchmarkMailLifecycle is one mail's life in the outbox: queued (with
// bodies the size of a real mail's, about 2 KB of text and 6 KB of HTML,
// as sealed), claimed, marked sent (its bodies erased) and pruned: the
// writes secure_delete makes overwrite what they free.
func BenchmarkMailLifecycle(b *testing.B) {
	now := time.Now()
	s, uid, _ := benchUser(b, 1, now)
	ctx := context.Background()
	text, html := strings.Repeat("t", 2<<10), strings.Repeat("h", 6<<10)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		m := db.Mail{MessageID: fmt.Sprintf("bench-%d@doorman.test", i), UserID: uid, To: "bench@example.com", Kind: db.MailPasswordChanged,
			Subject: "Your password was changed", Text: text, HTML: html, CreatedAt: now}
		if err := s.QueueMail(ctx, m); err != nil {
			b.Fatal(err)
		}
		got, err := s.ClaimMail(ctx, "bench", now, time.Minute, 1)
		if err != nil || len(got) != 1 {
			b.Fatalf("ClaimMail = %d, %v", len(got), err)
		}
		if err := s.MarkMailSent(ctx, got[0].ID, "bench", now); err != nil {
			b.Fatal(err)
		}
		if _, err := s.PruneMail(ctx, now.Add(time.Second)); err != nil {
			b.Fatal(err)
		}
	}
}

// hot is the context the hot reads ran under through database/sql before
// they left it (hot.go): ctx's values without its cancellation, which
// spares the driver its per-query cancellation goroutine. The read floor
// above measures database/sql at its best.
func hot(ctx context.Context) context.Context {
	if ctx.Err() != nil {
		return ctx
	}
	return context.WithoutCancel(ctx)
}
