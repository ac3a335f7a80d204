package views

import "strconv"

// SessionEntry is one entry of the Security page's session list: one
// session (Group nil), or a group of look-alike sessions.
type SessionEntry struct {
	Row   SessionRow
	Group *SessionGroup
}

// SessionGroup is sessions that look alike (the same device name or
// browser, kind and place), shown as one expandable entry; each member
// keeps its own row, X and details link.
type SessionGroup struct {
	Key        string // data-group: the same for the same look-alikes across reloads
	Device     string // the members' device name or browser label
	Browser    string // the browser label beside a name
	DeviceKind string
	Location   string
	Count      string // "4 sessions"
	// The newest member's last activity.
	LastActive, LastActiveISO, LastActiveAt string
	Members                                 []SessionRow
	IDs                                     []string // the members' ids, posted by "Sign out these 4"
	EndLabel                                string   // "Sign out these 4"
	EndURL                                  string   // its confirm page (GET), the action its dialog posts to
	DialogID, DialogMessage                 string
}

// RenameForm names a session's device on its details page.
type RenameForm struct {
	Action string
	Value  string
	Error  string
	Max    int
}

// maxLength is Max for a maxlength attribute.
func (f RenameForm) maxLength() string { return strconv.Itoa(f.Max) }
