package auth_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/chatgw/gateway/gateway/auth"
)

func Example() {
	secret := []byte("a-long-random-shared-secret-0123")
	v, err := auth.NewVerifier(auth.Config{Secret: secret, Audience: "chat", Issuer: "idp"})
	if err != nil {
		fmt.Println(err)
		return
	}

	// The identity provider mints the token; the client presents it at the
	// handshake as "Authorization: Bearer <jwt>" or "?token=<jwt>".
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub":   "alice",
		"name":  "Alice",
		"aud":   "chat",
		"iss":   "idp",
		"exp":   jwt.NewNumericDate(time.Now().Add(time.Hour)),
		"rooms": []string{"team-*", "general"},
	}).SignedString(secret)
	if err != nil {
		fmt.Println(err)
		return
	}

	id, err := v.Verify(token)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(id.User, id.Name, id.Rooms)
	for _, room := range []string{"general", "team-core", "random", "@alice"} {
		fmt.Printf("%s: %v\n", room, id.MayUse(room))
	}

	// A token signed with another secret is refused; the error wraps
	// auth.ErrInvalid and never quotes the token.
	forged, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "mallory", "aud": "chat", "iss": "idp",
	}).SignedString([]byte("not-the-secret"))
	_, err = v.Verify(forged)
	fmt.Println(err, errors.Is(err, auth.ErrInvalid))
	// Output:
	// alice Alice [team-* general]
	// general: true
	// team-core: true
	// random: false
	// @alice: true
	// auth: invalid token: bad signature or algorithm true
}
