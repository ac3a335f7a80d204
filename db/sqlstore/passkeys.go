package sqlstore

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"time"

	"doorman/db"
)

const passkeyColumns = `id, user_id, name, credential_id, public_key, aaguid, attestation_type, sign_count,
	backup_eligible, backup_state, user_verified, transports, created_at, last_used_at, clone_warnings, clone_warned_at, added_by_session`

func scanPasskey(row Row) (db.Passkey, error) {
	var p db.Passkey
	var count, created, used int64
	var transports string
	var warned *int64
	if err := row.Scan(&p.ID, &p.UserID, &p.Name, &p.CredentialID, &p.PublicKey, &p.AAGUID, &p.AttestationType, &count,
		&p.BackupEligible, &p.BackupState, &p.UserVerified, &transports, &created, &used, &p.CloneWarnings, &warned, &p.AddedBySession); err != nil {
		return db.Passkey{}, err
	}
	p.SignCount = uint32(count)
	p.Transports = strings.Fields(transports)
	p.CreatedAt, p.LastUsedAt, p.CloneWarnedAt = time.Unix(created, 0), fromUnix(used), optionalTime(warned)
	return p, nil
}

// PasskeyUserHandle returns the user's WebAuthn user handle, made the first
// time it is asked for: 32 random bytes (the specification's 64-byte cap,
// and nothing that names the person), the same for every passkey of the
// account so a sign-in's handle leads back to it. db.ErrNotFound for no
// such user.
func (s *Store) PasskeyUserHandle(ctx context.Context, userID int64, now time.Time) ([]byte, error) {
	const handleSQL = `SELECT handle FROM passkey_users WHERE user_id = ?`
	var handle []byte
	err := s.d.Reads().QueryRow(ctx, handleSQL, userID).Scan(&handle)
	if err == nil {
		return handle, nil
	}
	if !errors.Is(err, ErrNoRows) {
		return nil, failed("passkey user handle", err)
	}
	fresh := make([]byte, 32)
	rand.Read(fresh) // never fails (it crashes the program instead)
	err = s.d.Write(ctx, func(tx Q) error {
		if err := s.lockUserKey(ctx, tx, userID); err != nil {
			return err
		}
		// Two callers at once agree: the second insert does nothing.
		if _, err := tx.Exec(ctx, `INSERT INTO passkey_users (user_id, handle, created_at) VALUES (?, ?, ?)
			ON CONFLICT (user_id) DO NOTHING`, userID, fresh, now.Unix()); err != nil {
			return err
		}
		return tx.QueryRow(ctx, handleSQL, userID).Scan(&handle)
	})
	if err != nil {
		return nil, failed("passkey user handle", err)
	}
	return handle, nil
}

// UserByPasskeyHandle returns the user whose WebAuthn user handle it is.
func (s *Store) UserByPasskeyHandle(ctx context.Context, handle []byte) (db.User, error) {
	u, err := scanUser(s.d.Reads().QueryRow(ctx, `SELECT `+strings.ReplaceAll("u."+userColumns, ", ", ", u.")+`
		FROM passkey_users p JOIN users u ON u.id = p.user_id WHERE p.handle = ?`, handle))
	if err != nil {
		return db.User{}, failed("user by passkey handle", notFound(err))
	}
	return u, nil
}

// AddPasskey stores a new passkey of the user's, under the user's row lock
// (checkEpochIn: PostgreSQL FOR UPDATE), which orders the count against
// every other addition, so no two at once pass the cap, and this write
// against every reset of the user's sign-ins.
func (s *Store) AddPasskey(ctx context.Context, p db.Passkey, max int, epoch int64, mail ...db.Mail) (db.Passkey, error) {
	err := s.d.Write(ctx, func(tx Q) error {
		if err := s.checkEpochIn(ctx, tx, p.UserID, epoch); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM passkeys WHERE user_id = ?`, p.UserID).Scan(&n); err != nil {
			return err
		}
		if n >= max {
			return db.ErrPasskeyLimit
		}
		err := tx.QueryRow(ctx, `INSERT INTO passkeys (user_id, name, credential_id, public_key, aaguid, attestation_type,
			sign_count, backup_eligible, backup_state, user_verified, transports, created_at, added_by_session)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			p.UserID, p.Name, p.CredentialID, p.PublicKey, p.AAGUID, p.AttestationType, int64(p.SignCount),
			p.BackupEligible, p.BackupState, p.UserVerified, strings.Join(p.Transports, " "), p.CreatedAt.Unix(), p.AddedBySession).Scan(&p.ID)
		if err != nil {
			return err
		}
		if err := s.recordIn(ctx, tx, db.SecurityEvent{UserID: p.UserID, Kind: db.EventPasskeyAdded, At: p.CreatedAt,
			Detail: p.Name}); err != nil {
			return err
		}
		return s.queueIn(ctx, tx, 0, mail)
	})
	if s.d.IsUniqueViolation(err) {
		return db.Passkey{}, db.ErrConflict
	}
	if err != nil {
		return db.Passkey{}, failed("add passkey", err)
	}
	return p, nil
}

// listPasskeysSQL is ListPasskeys' read (and SecurityOverview's).
const listPasskeysSQL = `SELECT ` + passkeyColumns + ` FROM passkeys WHERE user_id = ? ORDER BY created_at, id`

// ListPasskeys returns the user's passkeys, oldest first (a Security page
// read: hot).
func (s *Store) ListPasskeys(ctx context.Context, userID int64) ([]db.Passkey, error) {
	rows, err := s.d.Hot().Query(ctx, listPasskeysSQL, userID)
	out, err := scanAll(rows, err, scanPasskey)
	if err != nil {
		return nil, failed("list passkeys", err)
	}
	return out, nil
}

// PasskeyByCredentialID returns the passkey with that credential id.
func (s *Store) PasskeyByCredentialID(ctx context.Context, credentialID []byte) (db.Passkey, error) {
	p, err := scanPasskey(s.d.Reads().QueryRow(ctx, `SELECT `+passkeyColumns+` FROM passkeys WHERE credential_id = ?`, credentialID))
	if err != nil {
		return db.Passkey{}, failed("passkey by credential id", notFound(err))
	}
	return p, nil
}

// RenamePasskey renames one of the user's passkeys (ownership in the WHERE).
func (s *Store) RenamePasskey(ctx context.Context, userID, id int64, name string) error {
	n, err := s.d.Writes().Exec(ctx, `UPDATE passkeys SET name = ? WHERE user_id = ? AND id = ?`, name, userID, id)
	if err == nil && n == 0 {
		err = db.ErrNotFound
	}
	return failed("rename passkey", err)
}

// RemovePasskey removes one of the user's passkeys and, if asked, ends the
// live sessions it opened, in one transaction. The user's row is locked
// first (KEY SHARE, see Lock order): the history rows take that lock, and
// the endings go through revokeIn.
func (s *Store) RemovePasskey(ctx context.Context, userID, id int64, endSessions bool, by string, now time.Time) (db.Passkey, []db.Session, error) {
	var p db.Passkey
	var ended []db.Session
	err := s.d.Write(ctx, func(tx Q) error {
		if err := s.lockUserKey(ctx, tx, userID); err != nil {
			return err
		}
		var err error
		p, err = scanPasskey(tx.QueryRow(ctx, `DELETE FROM passkeys WHERE user_id = ? AND id = ? RETURNING `+passkeyColumns, userID, id))
		if err != nil {
			return notFound(err)
		}
		if endSessions {
			if ended, err = s.revokeIn(ctx, tx, `user_id = ?4 AND passkey_id = ?5`, db.ReasonPasskeyRemoved, by, now, userID, id); err != nil {
				return err
			}
		}
		return s.recordIn(ctx, tx, db.SecurityEvent{UserID: userID, Kind: db.EventPasskeyRemoved, At: now, Detail: p.Name, By: by})
	})
	if err != nil {
		return db.Passkey{}, nil, failed("remove passkey", err)
	}
	s.notify(db.EndedEvents(ended))
	return p, ended, nil
}

// SignInWithPasskey records the passkey's use and creates the session it
// opened, in one transaction: the user's row first (FOR UPDATE, as every
// sign-in), then the passkey's, so two sign-ins with the same passkey at
// once compare their counters one after the other. A refused session (a
// reset in flight) rolls the passkey's use back with it.
func (s *Store) SignInWithPasskey(ctx context.Context, use db.PasskeyUse, sess db.Session, maxPerUser int, epoch int64, mail ...db.Mail) ([]db.Session, bool, error) {
	var evicted []db.Session
	cloned := false
	sess.PasskeyID = use.PasskeyID
	err := s.d.Write(ctx, func(tx Q) error {
		if _, err := s.lockUser(ctx, tx, sess.UserID); err != nil {
			return err
		}
		var stored int64
		var name string
		err := tx.QueryRow(ctx, `SELECT sign_count, name FROM passkeys WHERE id = ? AND user_id = ?`+s.forUpdate("UPDATE"),
			use.PasskeyID, sess.UserID).Scan(&stored, &name)
		if err != nil {
			return notFound(err)
		}
		// WebAuthn §7.2 step 22: a counter of either side non-zero that
		// does not go past the stored one may be a cloned authenticator.
		// The stored counter keeps the highest seen.
		count := int64(use.SignCount)
		cloned = (count != 0 || stored != 0) && count <= stored
		next := stored
		if count > stored {
			next = count
		}
		stmts := []Stmt{{`UPDATE passkeys SET sign_count = ?, backup_state = ?, last_used_at = ? WHERE id = ?`,
			[]any{next, use.BackupState, use.At.Unix(), use.PasskeyID}}}
		if cloned {
			stmts = append(stmts,
				Stmt{`UPDATE passkeys SET clone_warnings = clone_warnings + 1, clone_warned_at = ? WHERE id = ?`, []any{use.At.Unix(), use.PasskeyID}},
				eventStmt(ctx, db.SecurityEvent{UserID: sess.UserID, Kind: db.EventPasskeyCloned, At: use.At, SessionID: sess.ID,
					Device: sess.DeviceLabel, Location: sess.Location, IP: sess.IP, Detail: name}))
		}
		if err := s.d.ExecBatch(ctx, tx, stmts...); err != nil {
			return err
		}
		evicted, err = s.createSessionIn(ctx, tx, sess, maxPerUser, epoch, mail)
		return err
	})
	if err != nil {
		return nil, false, failed("sign in with passkey", err)
	}
	s.notifyCreated(sess, evicted)
	return evicted, cloned, nil
}

// CreatePasskeyCeremony stores a ceremony in flight.
func (s *Store) CreatePasskeyCeremony(ctx context.Context, c db.PasskeyCeremony) error {
	var user any
	if c.UserID != 0 {
		user = c.UserID
	}
	_, err := s.d.Writes().Exec(ctx, `INSERT INTO passkey_ceremonies (id, kind, user_id, session_id, name, data, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, c.ID, c.Kind, user, c.SessionID, c.Name, c.Data, c.CreatedAt.Unix(), c.ExpiresAt.Unix())
	if s.d.IsForeignKeyViolation(err) {
		return db.ErrNotFound
	}
	if s.d.IsUniqueViolation(err) {
		return db.ErrConflict
	}
	return failed("create passkey ceremony", err)
}

// TakePasskeyCeremony deletes the ceremony as it reads it, in one
// statement: of two requests finishing the same ceremony at once (on any
// instances), exactly one gets it. An expired one is deleted all the same
// and refused.
func (s *Store) TakePasskeyCeremony(ctx context.Context, id, kind, sessionID string, now time.Time) (db.PasskeyCeremony, error) {
	var c db.PasskeyCeremony
	var user *int64
	var created, expires int64
	err := s.d.Writes().QueryRow(ctx, `DELETE FROM passkey_ceremonies WHERE id = ? AND kind = ? AND session_id = ?
		RETURNING id, kind, user_id, session_id, name, data, created_at, expires_at`, id, kind, sessionID).Scan(
		&c.ID, &c.Kind, &user, &c.SessionID, &c.Name, &c.Data, &created, &expires)
	if err != nil {
		return db.PasskeyCeremony{}, failed("take passkey ceremony", notFound(err))
	}
	if user != nil {
		c.UserID = *user
	}
	c.CreatedAt, c.ExpiresAt = time.Unix(created, 0), time.Unix(expires, 0)
	if !now.Before(c.ExpiresAt) {
		return db.PasskeyCeremony{}, db.ErrNotFound
	}
	return c, nil
}

// PrunePasskeyCeremonies deletes ceremonies expired before cutoff.
func (s *Store) PrunePasskeyCeremonies(ctx context.Context, cutoff time.Time) (int64, error) {
	n, err := s.d.Writes().Exec(ctx, `DELETE FROM passkey_ceremonies WHERE expires_at < ?`, cutoff.Unix())
	if err != nil {
		return 0, failed("prune passkey ceremonies", err)
	}
	return n, nil
}
