package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/watchdog-ha/watchdog/client"
)

func TestDefinitionSendsOnlyWhatIsSet(t *testing.T) {
	b, err := json.Marshal(client.Definition{Timeout: 90 * time.Second, Actions: []string{}, Tags: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"actions":[],"tags":["x"],"timeout":"1m30s"}`; got != want {
		t.Fatalf("body %s, want %s", got, want)
	}
}

func TestDefineThenDelete(t *testing.T) {
	srv, f := singleNode(t)
	c := newClient(t, []string{srv.URL})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	def := client.Definition{Timeout: time.Hour, Actions: []string{}, OnRecovered: []string{}, Tags: []string{"batch"}, Description: "nightly"}
	s, err := c.Define(ctx, "job", def)
	if err != nil {
		t.Fatalf("Define: %v", err)
	}
	if s.ID != "job" || s.Source != "api" || s.Timeout != time.Hour || len(s.Actions) != 0 || s.Description != "nightly" {
		t.Fatalf("defined: %+v", s)
	}
	if got, ok := f.Service("job"); !ok || got.Def.Timeout != time.Hour {
		t.Fatalf("committed: %+v, %v", got, ok)
	}
	if err := c.Delete(ctx, "job"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, ok := f.Service("job"); ok {
		t.Fatal("Delete returned nil but the service is still there")
	}
	var apiErr *client.APIError
	if err := c.Delete(ctx, "job"); !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound {
		t.Fatalf("second Delete: %v, want an APIError 404", err)
	}
	if _, err := c.Define(ctx, "job", client.Definition{Actions: []string{"nope"}}); !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest {
		t.Fatalf("Define with an unknown action: %v, want an APIError 400", err)
	}
	if err := c.Delete(ctx, ".."); !errors.Is(err, client.ErrInvalidID) {
		t.Fatalf("Delete(..): %v", err)
	}
}
