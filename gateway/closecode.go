package gateway

import "github.com/chatgw/gateway/gateway/hub"

// Close status codes (RFC 6455 7.4; 4000-4999 are the gateway's own,
// listed in docs/protocol.md). Every code the gateway sends or answers
// with is named here, and closeReason below says what each means in a log
// line, so that adding a code is one edit in one file.
//
// They are untyped constants, not a defined type: hub.Client.Close and
// CloseCode, the WebSocket reader and the metrics all speak int, and a type of our own would only add conversions at each of
// them without catching anything, every code here being a constant.
const (
	closeNormal        = hub.CloseNormal       // 1000: a client's own close, answered; API disconnect
	closeGoingAway     = hub.CloseGoingAway    // 1001: node draining
	closeProtocolError = 1002                  // unmasked frame, control frame over 125 bytes, parse error
	closeInvalidUTF8   = 1007                  // a text message or close reason that is not UTF-8
	closePolicy        = 1008                  // default of the server API's disconnect
	closeTooBig        = 1009                  // message over --max-message-bytes
	closeInternal      = 1011                  // a handler panicked
	closeTokenExpired  = 4000                  // the token ran out while connected
	closeSlowConsumer  = hub.CloseSlowConsumer // 4001: outbound backlog over --outbound-max-bytes
	closeAbuse         = 4002                  // repeated rate limit violations, or requests faster than they are handled
)

// Codes that are never sent, but that the gateway reads or reports.
const (
	// closeAbnormal is logged and counted for a socket that dropped
	// without a close frame.
	closeAbnormal = 1006
)

// closeCodeOf is the code a closed connection is logged and counted with:
// the one of the close frame sent or answered, or 1006 when the socket
// dropped without one.
func closeCodeOf(code int) int {
	if code == 0 {
		return closeAbnormal
	}
	return code
}

// closeReason explains a close code in a log line.
func closeReason(code int) string {
	switch code {
	case 0:
		return "socket dropped without a close frame"
	case closeProtocolError:
		return "protocol error"
	case closeInvalidUTF8:
		return "invalid UTF-8 in a text frame"
	case closeTooBig:
		return "message over --max-message-bytes"
	case closeInternal:
		return "internal error in a handler"
	case closeTokenExpired:
		return "token expired"
	case closeSlowConsumer:
		return "slow consumer: outbound backlog over --outbound-max-bytes"
	case closeAbuse:
		return "repeated rate limit violations"
	}
	return "closed by the peer or the server API"
}
