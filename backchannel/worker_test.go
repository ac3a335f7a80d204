package backchannel

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"doorman/db"
)

// fakeStore is an outbox of given deliveries, recording outcomes.
type fakeStore struct {
	mu        sync.Mutex
	due       []db.LogoutDelivery
	delivered []int64
	failed    []failure
}

type failure struct {
	id     int64
	text   string
	next   time.Time
	giveUp bool
}

func (s *fakeStore) ClaimLogoutDeliveries(_ context.Context, _ time.Time, _ time.Duration, limit int) ([]db.LogoutDelivery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := min(limit, len(s.due))
	out := s.due[:n]
	s.due = s.due[n:]
	return out, nil
}

func (s *fakeStore) LogoutDelivered(_ context.Context, id int64, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delivered = append(s.delivered, id)
	return nil
}

func (s *fakeStore) LogoutFailed(_ context.Context, id int64, text string, next time.Time, giveUp bool, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failed = append(s.failed, failure{id, text, next, giveUp})
	return nil
}

type fakeSigner struct{}

func (fakeSigner) LogoutToken(context.Context, db.LogoutDelivery) (string, error) {
	return "a.b.c", nil
}

// TestOutcomes: 2xx is delivered; a non-2xx, a redirect and a closed port
// are failures retried after the backoff; one that has failed for longer
// than GiveUpAfter is given up. The request is a form POST of the token.
func TestOutcomes(t *testing.T) {
	var mu sync.Mutex
	var forms []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		forms = append(forms, r.Method+" "+r.Header.Get("Content-Type")+" "+r.PostFormValue("logout_token")+" "+r.Header.Get("Cookie"))
		mu.Unlock()
		switch r.URL.Path {
		case "/ok":
			w.WriteHeader(http.StatusOK)
		case "/redirect":
			http.Redirect(w, r, "/ok", http.StatusFound)
		default:
			http.Error(w, "down", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	now := time.Unix(1_800_000_000, 0)
	store := &fakeStore{due: []db.LogoutDelivery{
		{ID: 1, ClientID: "a", URI: srv.URL + "/ok", Attempts: 1, CreatedAt: now},
		{ID: 2, ClientID: "b", URI: srv.URL + "/down", Attempts: 1, CreatedAt: now},
		{ID: 3, ClientID: "c", URI: srv.URL + "/redirect", Attempts: 1, CreatedAt: now},
		{ID: 4, ClientID: "d", URI: closedURL + "/gone", Attempts: 1, CreatedAt: now},
		{ID: 5, ClientID: "e", URI: srv.URL + "/down", Attempts: 40, CreatedAt: now.Add(-DefaultGiveUpAfter)},
	}}
	w := &Worker{Store: store, Signer: fakeSigner{}, Now: func() time.Time { return now },
		Backoff: func(int) time.Duration { return time.Minute }}
	w.Client = NewClient(0)
	defer w.Client.CloseIdleConnections()
	if n, err := w.RunOnce(context.Background()); err != nil || n != 5 {
		t.Fatalf("RunOnce: %d, %v", n, err)
	}
	if len(store.delivered) != 1 || store.delivered[0] != 1 {
		t.Errorf("delivered %v, want [1]", store.delivered)
	}
	byID := map[int64]failure{}
	for _, f := range store.failed {
		byID[f.id] = f
	}
	for _, id := range []int64{2, 3, 4} {
		f, ok := byID[id]
		if !ok || f.giveUp || !f.next.Equal(now.Add(time.Minute)) || f.text == "" {
			t.Errorf("delivery %d: %+v, want a failure retried in a minute", id, f)
		}
	}
	if f := byID[5]; !f.giveUp {
		t.Errorf("a three-day-old delivery was not given up: %+v", f)
	}
	if f := byID[3]; f.text != "the app answered 302 Found (a redirect, not followed)" {
		t.Errorf("redirect: %q", f.text)
	}
	if f := byID[4]; f.text != "the app refused the connection" {
		t.Errorf("closed port: %q", f.text)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(forms) != 4 { // ok, down, redirect (not followed to /ok), the old one
		t.Errorf("the app got %d requests, want 4: %q", len(forms), forms)
	}
	for _, f := range forms {
		if f != "POST application/x-www-form-urlencoded a.b.c " {
			t.Errorf("request %q, want a form POST of the token, no cookie", f)
		}
	}
}

// TestDefaultBackoff: from 10 s up to an hour, jittered by at most 20%.
func TestDefaultBackoff(t *testing.T) {
	for attempt, want := range map[int]time.Duration{1: 10 * time.Second, 2: 30 * time.Second, 4: 5 * time.Minute, 7: time.Hour, 100: time.Hour} {
		for range 20 {
			if got := DefaultBackoff(attempt); got < want*8/10 || got > want*12/10 {
				t.Errorf("DefaultBackoff(%d) = %v, want %v ± 20%%", attempt, got, want)
			}
		}
	}
}
