package codec

// MaxNameLen is the longest user id or room name the protocol allows.
const MaxNameLen = 64

// NameRule says what ValidName accepts, in the words of the error messages.
// It is written once here because clients and tests compare those messages
// byte for byte, and the WebSocket and HTTP APIs must say the same thing.
const NameRule = "1-64 characters of A-Z a-z 0-9 _ . : -"

// RoomRule says what ValidRoom accepts: a plain name or a personal inbox.
const RoomRule = NameRule + " (or @user)"

// Error messages for names that break the rules, shared by every API.
const (
	InvalidRoomMessage = "invalid room name: " + RoomRule
	InvalidUserMessage = "invalid user id: " + NameRule
)

// UserFieldMessage is the error message for a request field that must hold
// a user id, e.g. `"to" must be a user id: 1-64 characters of ...`.
func UserFieldMessage(field string) string {
	return `"` + field + `" must be a user id: ` + NameRule
}

// ValidName reports whether s is a valid user id or plain room name: see
// NameRule.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > MaxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '_', c == '.', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// ValidRoom reports whether s is a valid room name: a plain name, or "@"
// followed by a user id (a personal inbox).
func ValidRoom(s string) bool {
	if len(s) > 0 && s[0] == '@' {
		return ValidName(s[1:])
	}
	return ValidName(s)
}

// IsInbox reports whether room names a personal inbox.
func IsInbox(room string) bool { return len(room) > 0 && room[0] == '@' }

// Inbox returns the personal inbox room of user.
func Inbox(user string) string { return "@" + user }
