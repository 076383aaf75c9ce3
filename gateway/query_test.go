package gateway

import (
	"net/url"
	"strings"
	"testing"
)

// queryValue must answer as url.ParseQuery(raw).Get(key) does.
func TestQueryValueMatchesNetURL(t *testing.T) {
	raws := []string{
		"", "user=alice", "user=", "user", "=alice", "&&user=alice&&",
		"user=alice&user=bob", "token=t&user=alice", "user=al%69ce", "us%65r=alice",
		"user=a+b", "user=%zz&user=bob", "us%zzer=x&user=bob", "user=a;b", "x=1;user=a&user=b",
		"user=a=b", "USER=alice", "user=%", "token=a%2Bb%3D&user=x",
		strings.Repeat("a=1&", 1500) + "user=alice",
		strings.Repeat("a=1&", 10001) + "user=alice",
	}
	for _, raw := range raws {
		q, _ := url.ParseQuery(raw)
		for _, key := range []string{"user", "token", "a"} {
			if got, want := queryValue(raw, key), q.Get(key); got != want {
				t.Errorf("queryValue(%.40q, %q) = %q, want %q", raw, key, got, want)
			}
		}
	}
}
