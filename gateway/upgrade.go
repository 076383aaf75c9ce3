package gateway

import (
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
)

// checkUpgrade applies RFC 6455 section 4.2.1 to an upgrade request before
// any other work, and returns the status and reason refusing it, or 0.
// (nbio's upgrader, which the node no longer uses, checked less: it took
// HTTP/1.0, any key, a request with a body.)
func checkUpgrade(r *http.Request) (int, string) {
	switch {
	case r.Method != http.MethodGet:
		return http.StatusMethodNotAllowed, "a WebSocket upgrade is a GET request"
	case !r.ProtoAtLeast(1, 1):
		return http.StatusBadRequest, "a WebSocket upgrade needs HTTP/1.1"
	case len(r.TransferEncoding) > 0 || r.Header.Get("Transfer-Encoding") != "" ||
		r.ContentLength > 0 || (r.Header.Get("Content-Length") != "" && r.Header.Get("Content-Length") != "0"):
		return http.StatusBadRequest, "a WebSocket upgrade request has no body"
	case !hasToken(r.Header, "Upgrade", "websocket"):
		return http.StatusBadRequest, "this endpoint upgrades to WebSocket: send Upgrade: websocket"
	case !hasToken(r.Header, "Connection", "upgrade"):
		return http.StatusBadRequest, "send Connection: Upgrade"
	case r.Header.Get("Sec-WebSocket-Version") != "13":
		return http.StatusUpgradeRequired, "unsupported Sec-WebSocket-Version; this node speaks 13"
	}
	key := r.Header.Values("Sec-WebSocket-Key")
	if len(key) != 1 {
		return http.StatusBadRequest, "want exactly one Sec-WebSocket-Key"
	}
	if b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(key[0])); err != nil || len(b) != 16 {
		return http.StatusBadRequest, "Sec-WebSocket-Key must be base64 of 16 bytes"
	}
	return 0, ""
}

// wsGUID is RFC 6455's constant for Sec-WebSocket-Accept (section 1.3).
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// switchingProtocols is the 101 answer to an upgrade request with key
// (checkUpgrade has checked it). No subprotocol and no extension are
// offered: the protocol is JSON text frames (docs/protocol.md).
func switchingProtocols(key string) []byte {
	sum := sha1.Sum([]byte(key + wsGUID))
	b := make([]byte, 0, 160)
	b = append(b, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	b = base64.StdEncoding.AppendEncode(b, sum[:])
	return append(b, "\r\n\r\n"...)
}

// hasToken reports whether a comma-separated header holds token, ignoring
// case (Connection: keep-alive, Upgrade).
func hasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// headersTooLarge answers a socket that sent more than --max-header-bytes
// before its upgrade.
var headersTooLarge = rawHTTP(http.StatusRequestHeaderFieldsTooLarge,
	"request headers too large (over --max-header-bytes)", "")

// unwrapOp drops the "listen tcp ADDR:" prefix of a listen error, which
// the caller's message already names: one clear line, not a repeated one.
func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		var se *os.SyscallError
		if errors.As(op.Err, &se) {
			return se.Err
		}
		return op.Err
	}
	return err
}
