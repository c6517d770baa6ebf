package consumer_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/parleyhq/parley/consumer"
)

// TestOpenAPIMatchesRoutes fails when a route is served without being
// documented, or documented without being served: it compares the
// document with the handler's patterns, then sends every documented
// operation to the handler and every undocumented method of a documented
// path, and checks which ones the router knows.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	env := start(t, nil)
	r := env.API.Do("GET", "/openapi.json", nil, nil)
	if r.Status != 200 {
		t.Fatalf("GET /openapi.json: %s", r)
	}
	var doc struct {
		OpenAPI string `json:"openapi"`
		Paths   map[string]map[string]struct {
			OperationID string                     `json:"operationId"`
			Summary     string                     `json:"summary"`
			Responses   map[string]json.RawMessage `json:"responses"`
		} `json:"paths"`
		Components struct {
			Schemas    map[string]json.RawMessage `json:"schemas"`
			Parameters map[string]json.RawMessage `json:"parameters"`
		} `json:"components"`
	}
	if err := json.Unmarshal(r.Body, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}

	var documented []string
	ops := map[string]bool{}
	for path, methods := range doc.Paths {
		for method, op := range methods {
			documented = append(documented, strings.ToUpper(method)+" "+path)
			if op.OperationID == "" || op.Summary == "" || len(op.Responses) == 0 {
				t.Errorf("%s %s: operationId, summary and responses are required", method, path)
			}
			if ops[op.OperationID] {
				t.Errorf("operationId %q used twice", op.OperationID)
			}
			ops[op.OperationID] = true
		}
	}
	served := env.Handler.Patterns()
	sort.Strings(documented)
	sort.Strings(served)
	if !slices.Equal(documented, served) {
		t.Fatalf("documented operations differ from the routes:\ndocumented %v\nserved     %v", documented, served)
	}

	// Every $ref resolves.
	for _, m := range regexp.MustCompile(`"#/components/(schemas|parameters)/([^"]+)"`).FindAllStringSubmatch(string(r.Body), -1) {
		table := doc.Components.Schemas
		if m[1] == "parameters" {
			table = doc.Components.Parameters
		}
		if _, ok := table[m[2]]; !ok {
			t.Errorf("dangling $ref %s/%s", m[1], m[2])
		}
	}

	// Probe the router: documented operations reach a route, other
	// methods on documented paths do not.
	param := regexp.MustCompile(`\{[^}]+\}`)
	unmatched := func(method, path string) bool {
		req := httptest.NewRequest(method, param.ReplaceAllString(path, "0"), nil)
		req.RemoteAddr = "127.0.0.1:1"
		w := httptest.NewRecorder()
		env.Handler.ServeHTTP(w, req)
		var e struct {
			Code int `json:"error_code"`
		}
		_ = json.Unmarshal(w.Body.Bytes(), &e)
		return e.Code == consumer.CodeNotFound || e.Code == consumer.CodeMethodNotAllowed
	}
	for path, methods := range doc.Paths {
		for _, method := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			_, doced := methods[strings.ToLower(method)]
			if got := unmatched(method, path); got == doced {
				if doced {
					t.Errorf("%s %s is documented but not routed", method, path)
				} else {
					t.Errorf("%s %s is routed but not documented", method, path)
				}
			}
		}
	}
	if !unmatched(http.MethodGet, "/no/such/path") {
		t.Fatal("the probe cannot tell an unknown path")
	}
}
