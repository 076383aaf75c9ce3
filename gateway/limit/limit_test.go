package limit

import "testing"

const sec = int64(1e9)

func TestBucketBurstThenRate(t *testing.T) {
	var b Bucket
	b.Init(40, 0)
	for i := 0; i < 40; i++ {
		if !b.Allow(20, 40, 0) {
			t.Fatalf("burst token %d refused", i)
		}
	}
	if b.Allow(20, 40, 0) {
		t.Fatal("41st frame allowed at once")
	}
	// 20/s refills one token per 50 ms.
	if b.Allow(20, 40, 49e6) {
		t.Fatal("allowed before a token refilled")
	}
	if !b.Allow(20, 40, 50e6) {
		t.Fatal("refused after a token refilled")
	}
	// A long pause refills to burst, never beyond.
	n := 0
	for b.Allow(20, 40, 100*sec) {
		n++
	}
	if n != 40 {
		t.Fatalf("after a long pause got %d tokens, want 40", n)
	}
}

func TestRefusalsTenWithinTenSeconds(t *testing.T) {
	var r Refusals
	for i := int64(0); i < 9; i++ {
		if r.Add(i * sec) {
			t.Fatalf("abusive after %d refusals", i+1)
		}
	}
	if !r.Add(9 * sec) {
		t.Fatal("10 refusals within 10 s not flagged")
	}
}

func TestRefusalsSpreadOut(t *testing.T) {
	var r Refusals
	// One refusal every 1.2 s never puts 10 within 10 s.
	for i := int64(0); i < 50; i++ {
		if r.Add(i * 1200e6) {
			t.Fatalf("flagged at refusal %d though spread out", i+1)
		}
	}
}
