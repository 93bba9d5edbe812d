package handlers

import (
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"

	"keyconsole/models"
)

// One rule for every path id: only a positive integer is an id; anything
// else is the same 404 as a missing record.
func TestPathIDOneRule(t *testing.T) {
	e := echo.New()
	for raw, want := range map[string]int64{"1": 1, "42": 42, "0": 0, "-3": 0, "x": 0, "": 0, "9223372036854775808": 0} {
		c := e.NewContext(httptest.NewRequest("GET", "/", nil), httptest.NewRecorder())
		c.SetParamNames("id")
		c.SetParamValues(raw)
		id, err := pathID(c, "id")
		if want == 0 {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("pathID(%q) = %d, %v; want ErrNotFound", raw, id, err)
			}
			continue
		}
		if err != nil || id != want {
			t.Errorf("pathID(%q) = %d, %v; want %d", raw, id, err, want)
		}
	}
}

func TestAgencyPath(t *testing.T) {
	s := Scope{Agency: models.Agency{Slug: "demo"}}
	for got, want := range map[string]string{
		agencyPath(s):                          "/a/demo",
		agencyPath(s, ""):                      "/a/demo/",
		agencyPath(s, "webhooks"):              "/a/demo/webhooks",
		agencyPath(s, "webhooks", "7", "edit"): "/a/demo/webhooks/7/edit",
	} {
		if got != want {
			t.Errorf("agencyPath = %q, want %q", got, want)
		}
	}
}
