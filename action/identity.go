package action

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// SignUser is what the website's backend puts into the chat context for a
// signed-in user: the hex HMAC-SHA256 of the user's Kommunicate user id,
// keyed with the shared secret (identity.secret).
func SignUser(secret, userID string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(userID))
	return hex.EncodeToString(m.Sum(nil))
}

// Verified reports whether sig vouches for userID under secret; an empty
// secret, user id or signature vouches for nobody.
func Verified(secret, userID, sig string) bool {
	if secret == "" || userID == "" || sig == "" {
		return false
	}
	return hmac.Equal([]byte(SignUser(secret, userID)), []byte(sig))
}
