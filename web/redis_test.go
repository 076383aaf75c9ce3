package web_test

import (
	"testing"

	"github.com/chatgw/gateway/internal/redistest"
)

func startRedis(t *testing.T) string { return redistest.Start(t).URL() }
