package browsertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/parleyhq/parley/consumer/auth"
	"github.com/parleyhq/parley/internal/testenv"
)

const token = "ui-browser-test-token"

// endpointsFor returns a configuration with the SQL broker (which the
// consumer API reads) and a RabbitMQ broker at amqpAddr, which the test
// makes unreachable and reachable.
func endpointsFor(amqpAddr, user, pass, name string) string {
	host, port, _ := strings.Cut(amqpAddr, ":")
	return fmt.Sprintf(`event_broker:
  - type: sql
    db: "{{dir}}/events.db"
  - type: pika
    url: %q
    port: %s
    username: %q
    password: %q
    exchange_name: %q
    queues: [%q]
    connection_attempts: 1
    retry_delay_in_seconds: 0.3
    raise_on_failure: false
    should_keep_unpublished_messages: false
tracker_store:
  type: sql
  db: "{{dir}}/rasa.db"
spool:
  dir: "{{dir}}/spool"
  retry_initial: 50ms
  retry_max: 300ms
`, host, port, user, pass, name, name)
}

// withClients adds two consumer API clients, tenants of the UI.
func withClients(t *testing.T, endpoints string) string {
	var b strings.Builder
	b.WriteString(endpoints + "consumer_api:\n  rate_limit: 0\n  clients:\n")
	for _, id := range []string{"analytics", "crm"} {
		h, err := auth.HashSecretCost(id+"-secret", 1000)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "    - client_id: %s\n      client_secret_hash: %q\n      topics: [rasa_core_events]\n", id, h)
	}
	return b.String()
}

// clientToken gets a consumer API token for a client.
func (in *instance) clientToken(id string) string {
	in.t.Helper()
	req, err := http.NewRequest("POST", in.base+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	if err != nil {
		in.t.Fatal(err)
	}
	req.SetBasicAuth(id, id+"-secret")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		in.t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		in.t.Fatalf("token for %s: %d %v", id, resp.StatusCode, err)
	}
	return tok.AccessToken
}

type ev = map[string]any

func user(ts float64, text, intent string, conf float64, ents ...ev) ev {
	if ents == nil {
		ents = []ev{}
	}
	return ev{"event": "user", "timestamp": ts, "text": text, "input_channel": "rest",
		"parse_data": ev{"intent": ev{"name": intent, "confidence": conf}, "entities": ents, "text": text}}
}

func bot(ts float64, text string) ev { return ev{"event": "bot", "timestamp": ts, "text": text} }

func action(ts float64, name string) ev {
	return ev{"event": "action", "timestamp": ts, "name": name, "policy": "RulePolicy", "confidence": 1.0}
}

func slot(ts float64, name string, value any) ev {
	return ev{"event": "slot", "timestamp": ts, "name": name, "value": value}
}

func (in *instance) appendEvents(id string, evs ...ev) {
	in.t.Helper()
	in.do("POST", "/conversations/"+url.PathEscape(id)+"/tracker/events", evs, http.StatusOK)
}

// TestBrowser drives the UI of a real parley serve in Chromium.
func TestBrowser(t *testing.T) {
	amqpURL := testenv.Get(t, "PARLEY_AMQP_URL")
	ctx := browser(t)
	u, err := url.Parse(amqpURL)
	if err != nil {
		t.Fatal(err)
	}
	pass, _ := u.User.Password()
	name := "ui_browser_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	t.Cleanup(func() { deleteRabbit(t, amqpURL, name) })
	// The broker starts unreachable: nothing listens on the proxy's port.
	px := newProxy(t, u.Host)
	in := startParley(t, withClients(t, endpointsFor(px.addr, u.User.Username(), pass, name)), "--auth-token", token)
	in.token = token

	t.Run("root redirects browsers only", func(t *testing.T) {
		resp, err := http.Get(in.base + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("GET / without Accept: %d %s, want Rasa's text", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	})

	t.Run("login", func(t *testing.T) {
		run(t, ctx, "open", chromedp.Navigate(in.base+"/"))
		waitFor(t, ctx, "login page", `location.pathname === "/ui/login" && !!document.querySelector("#token")`, 10*time.Second)
		run(t, ctx, "wrong token", chromedp.SendKeys(chromedp.CSS("#token"), "not-the-token"), chromedp.Click(chromedp.CSS("#login")))
		waitFor(t, ctx, "error shown", `!!document.querySelector("#login-error")`, 10*time.Second)
		run(t, ctx, "right token", chromedp.SendKeys(chromedp.CSS("#token"), token), chromedp.Click(chromedp.CSS("#login")))
		waitFor(t, ctx, "logged in", `location.pathname === "/ui/conversations"`, 10*time.Second)
		if href := eval[string](t, ctx, "location.href"); strings.Contains(href, token) {
			t.Errorf("token in the URL: %s", href)
		}
		if c := eval[string](t, ctx, "document.cookie"); strings.Contains(c, "parley_ui") {
			t.Errorf("session cookie readable by scripts: %q", c)
		}
		res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{in.base + "/ui/"}})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, c := range res.Cookies {
			if c.Name == "parley_ui" {
				found = true
				if !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict || c.Path != "/ui/" {
					t.Errorf("session cookie: HttpOnly %v, SameSite %q, Path %q", c.HTTPOnly, c.SameSite, c.Path)
				}
				if c.Value == token || strings.Contains(c.Value, token) {
					t.Error("session cookie holds the token")
				}
			}
		}
		if !found {
			t.Fatal("no session cookie")
		}
	})

	t0 := float64(time.Now().Unix())
	in.appendEvents("alice",
		action(t0, "action_session_start"),
		ev{"event": "session_started", "timestamp": t0 + 0.1},
		action(t0+0.2, "action_listen"),
		user(t0+1, "I want a table in Berlin", "book_table", 0.97, ev{"entity": "city", "value": "Berlin", "start": 18, "end": 24}),
		slot(t0+1.1, "city", "Berlin"),
		action(t0+1.2, "utter_ask_time"),
		bot(t0+1.3, "What time?"),
	)
	in.appendEvents("bob", user(t0+2, "hello", "greet", 0.91), bot(t0+2.1, "Hi Bob"))

	t.Run("conversations", func(t *testing.T) {
		run(t, ctx, "list", chromedp.Navigate(in.base+"/ui/conversations"))
		ids := eval[[]string](t, ctx, `Array.from(document.querySelectorAll("#conversations a.conv")).map(a => a.textContent)`)
		if len(ids) < 2 || ids[0] != "bob" || ids[1] != "alice" {
			t.Errorf("conversations, newest first: %q", ids)
		}
		run(t, ctx, "search", chromedp.SendKeys(chromedp.CSS("#q"), "table in\n"))
		waitFor(t, ctx, "search results", `location.search.includes("q=") && document.querySelectorAll("#conversations a.conv").length === 1`, 10*time.Second)
		if got := eval[string](t, ctx, `document.querySelector("#conversations a.conv").textContent`); got != "alice" {
			t.Errorf("search for text: %q, want alice", got)
		}
	})

	t.Run("transcript", func(t *testing.T) {
		run(t, ctx, "open alice", chromedp.Navigate(in.base+"/ui/conversations"), chromedp.Click(chromedp.CSS(`a.conv[href$="id=alice"]`)))
		waitFor(t, ctx, "transcript", `!!document.querySelector("#transcript .turn.bot")`, 10*time.Second)
		texts := eval[[]string](t, ctx, `Array.from(document.querySelectorAll("#transcript .turn .text")).map(e => e.textContent)`)
		if strings.Join(texts, "|") != "I want a table in Berlin|What time?" {
			t.Errorf("turns in order: %q", texts)
		}
		kinds := eval[[]string](t, ctx, `Array.from(document.querySelectorAll("#transcript > li")).map(e => e.classList.contains("marker") ? e.querySelector(".label").textContent : e.classList[1])`)
		want := []string{"action action_session_start", "session started", "action action_listen", "user", "slot city", "action utter_ask_time", "bot"}
		if strings.Join(kinds, "|") != strings.Join(want, "|") {
			t.Errorf("transcript items: %q, want %q", kinds, want)
		}
		if got := eval[string](t, ctx, `document.querySelector(".turn.user .intent").textContent + " " + document.querySelector(".turn.user .confidence").textContent`); got != "book_table 0.97" {
			t.Errorf("intent and confidence: %q", got)
		}
		if got := eval[string](t, ctx, `document.querySelector(".turn.user .entity").textContent`); got != "city=Berlin" {
			t.Errorf("entity: %q", got)
		}
		if got := eval[string](t, ctx, `document.querySelector("#slots dt").textContent + "=" + document.querySelector("#slots dd").textContent`); got != `city="Berlin"` {
			t.Errorf("slots: %q", got)
		}
		if got := eval[string](t, ctx, `document.querySelector(".turn.user time").textContent`); !strings.Contains(got, ":") {
			t.Errorf("timestamp: %q", got)
		}

		// A new event appears without reloading the page.
		eval[bool](t, ctx, `window.__noReload = true`)
		in.appendEvents("alice", user(t0+5, "at 8pm please", "inform", 0.88, ev{"entity": "time", "value": "20:00"}))
		waitFor(t, ctx, "live turn", `document.querySelectorAll("#transcript .turn.user").length === 2`, 10*time.Second)
		if !eval[bool](t, ctx, `window.__noReload === true`) {
			t.Error("the page reloaded")
		}
		if got := eval[string](t, ctx, `Array.from(document.querySelectorAll("#transcript .turn .text")).pop().textContent + " " + Array.from(document.querySelectorAll("#transcript .intent")).pop().textContent`); got != "at 8pm please inform" {
			t.Errorf("live turn: %q", got)
		}
	})

	t.Run("live events", func(t *testing.T) {
		run(t, ctx, "open live", chromedp.Navigate(in.base+"/ui/live?type=bot"))
		waitFor(t, ctx, "live page", `!!document.querySelector("#live-rows")`, 10*time.Second)
		eval[bool](t, ctx, `window.__noReload = true`)
		in.do("POST", "/events", []ev{
			{"sender_id": "tail-check", "event": "user", "timestamp": t0 + 6, "text": "ping"},
			{"sender_id": "tail-check", "event": "bot", "timestamp": t0 + 6.1, "text": "pong"},
		}, http.StatusAccepted)
		waitFor(t, ctx, "bot row", `Array.from(document.querySelectorAll("#live-rows tr")).some(r => r.innerText.includes("tail-check") && r.innerText.includes("pong"))`, 10*time.Second)
		if eval[bool](t, ctx, `Array.from(document.querySelectorAll("#live-rows tr")).some(r => r.innerText.includes("ping"))`) {
			t.Error("the type filter let a user event through")
		}
		if !eval[bool](t, ctx, `window.__noReload === true`) {
			t.Error("the page reloaded")
		}
	})

	t.Run("no script injection", func(t *testing.T) {
		evil := `x"><img src=x onerror=window.__pwned=1>`
		payloads := []string{
			`<script>window.__pwned=2</script>`,
			`<img src=x onerror="window.__pwned=3">`,
			`</li></ol><svg onload=window.__pwned=4>`,
			"\u202eevil\u202c zero\u200bwidth \U0001F469\u200d\U0001F469\u200d\U0001F467 \ufeffe\u0301 \x00nul",
		}
		in.appendEvents(evil,
			user(t0+7, payloads[0], `<b>intent</b>`, 0.5, ev{"entity": `"><script>window.__pwned=5</script>`, "value": `<img src=x onerror=window.__pwned=6>`}),
			slot(t0+7.1, `<i>slot</i>`, `<script>window.__pwned=7</script>`),
			bot(t0+7.2, payloads[1]),
			user(t0+7.3, payloads[2], "x", 0.1),
		)
		pages := []string{
			"/ui/conversations",
			"/ui/conversations?q=" + url.QueryEscape("<script>"),
			"/ui/conversation?id=" + url.QueryEscape(evil),
			"/ui/live",
		}
		for _, p := range pages {
			run(t, ctx, "open "+p, chromedp.Navigate(in.base+p))
			waitFor(t, ctx, "page "+p, `document.readyState === "complete"`, 10*time.Second)
			if n := eval[int](t, ctx, `document.querySelectorAll("main img, main script, main svg, main b, main i, main iframe").length`); n != 0 {
				t.Errorf("%s: %d injected elements", p, n)
			}
			if eval[bool](t, ctx, `typeof window.__pwned !== "undefined"`) {
				t.Errorf("%s: injected script ran (window.__pwned = %v)", p, eval[any](t, ctx, "window.__pwned"))
			}
		}
		// The transcript shows the text literally, odd Unicode included,
		// and appends live payloads as text too.
		run(t, ctx, "open transcript", chromedp.Navigate(in.base+"/ui/conversation?id="+url.QueryEscape(evil)))
		waitFor(t, ctx, "transcript", `document.querySelectorAll("#transcript .turn").length === 3`, 10*time.Second)
		texts := eval[[]string](t, ctx, `Array.from(document.querySelectorAll("#transcript .turn .text")).map(e => e.textContent)`)
		if len(texts) != 3 || texts[0] != payloads[0] || texts[1] != payloads[1] || texts[2] != payloads[2] {
			t.Errorf("payloads not shown as text: %q", texts)
		}
		if got := eval[string](t, ctx, `document.querySelector("#conv-id").textContent`); got != evil {
			t.Errorf("conversation id shown as %q", got)
		}
		in.appendEvents(evil, bot(t0+8, payloads[3]), bot(t0+8.1, `<script>window.__pwned=8</script>`))
		waitFor(t, ctx, "live payloads", `document.querySelectorAll("#transcript .turn").length === 5`, 10*time.Second)
		texts = eval[[]string](t, ctx, `Array.from(document.querySelectorAll("#transcript .turn .text")).map(e => e.textContent)`)
		// The NUL is shown as U+FFFD by the browser's HTML parser.
		if want := strings.ReplaceAll(payloads[3], "\x00", "\ufffd"); texts[3] != want {
			t.Errorf("odd Unicode: %q, want %q", texts[3], want)
		}
		if n := eval[int](t, ctx, `document.querySelectorAll("main img, main script, main svg").length`); n != 0 || eval[bool](t, ctx, `typeof window.__pwned !== "undefined"`) {
			t.Errorf("live append injected %d elements or ran a script", n)
		}
	})

	t.Run("consumers", func(t *testing.T) {
		// Another tenant's consumer, which analytics must not see below.
		crm := []string{"consumer-group", "crm-group", "consumer-name", "crm-1", "Authorization", "Bearer " + in.clientToken("crm")}
		in.do("POST", "/consumers", `{}`, http.StatusNoContent, crm...)
		h := []string{"consumer-group", "ui-group", "consumer-name", "c1", "Authorization", "Bearer " + in.clientToken("analytics")}
		in.do("POST", "/consumers", `{"auto.offset.reset": "earliest", "auto.commit.enable": "false"}`, http.StatusNoContent, h...)
		in.do("POST", "/consumers/subscription", `{"topics": ["rasa_core_events"]}`, http.StatusNoContent, h...)
		var recs []struct {
			Offset int64 `json:"offset"`
		}
		if err := json.Unmarshal(in.do("GET", "/consumers/records?timeout=10000", nil, http.StatusOK, h...), &recs); err != nil || len(recs) < 3 {
			t.Fatalf("records: %v, %d", err, len(recs))
		}
		commit := recs[1].Offset // "the last record processed": committed = this + 1
		in.do("POST", "/consumers/offsets", fmt.Sprintf(`{"offsets": [{"topic": "rasa_core_events", "partition": 0, "offset": %d}]}`, commit), http.StatusOK, h...)
		var offs struct {
			End int64 `json:"end_offset"`
		}
		if err := json.Unmarshal(in.do("GET", "/partitions/0/offsets", nil, http.StatusOK, h[4:]...), &offs); err != nil {
			t.Fatal(err)
		}
		run(t, ctx, "consumers page", chromedp.Navigate(in.base+"/ui/consumers"))
		waitFor(t, ctx, "group", `!!document.querySelector('section[data-group="ui-group"] td.committed')`, 10*time.Second)
		got := eval[[]string](t, ctx, `[document.querySelector('section[data-group="ui-group"] h3').textContent, document.querySelector('section[data-group="ui-group"] td.committed').textContent, document.querySelector('section[data-group="ui-group"] td.lag').textContent]`)
		if !eval[bool](t, ctx, `!!document.querySelector('section[data-group="crm-group"]')`) {
			t.Error("the operator does not see every tenant's consumers")
		}
		if !strings.HasPrefix(got[0], "c1") || got[1] != strconv.FormatInt(commit+1, 10) || got[2] != strconv.FormatInt(offs.End-commit-1, 10) {
			t.Errorf("consumers page: instance %q committed %q lag %q; want c1, %d, %d", got[0], got[1], got[2], commit+1, offs.End-commit-1)
		}
	})

	t.Run("delivery backlog and recovery", func(t *testing.T) {
		var evs []ev
		for i := range 20 {
			evs = append(evs, ev{"sender_id": "backlog", "event": "user", "timestamp": t0 + 10 + float64(i), "text": "queued " + strconv.Itoa(i)})
		}
		in.do("POST", "/events", evs, http.StatusAccepted)
		run(t, ctx, "delivery page", chromedp.Navigate(in.base+"/ui/delivery"))
		row := `document.querySelector('tr[data-broker*="pika"]')`
		waitFor(t, ctx, "backlog shown", row+` && Number(`+row+`.querySelector(".pending").textContent) >= 20 && `+row+`.querySelector(".state").textContent.includes("failing")`, 20*time.Second)
		if got := eval[string](t, ctx, row+`.querySelector(".lasterror").textContent`); !strings.Contains(strings.ToLower(got), "connect") && !strings.Contains(strings.ToLower(got), "refused") {
			t.Logf("last error shown: %q", got)
		}
		waitFor(t, ctx, "the reachable broker keeps up", `document.querySelector('tr[data-broker*="sql"] .pending').textContent === "0"`, 20*time.Second)
		eval[bool](t, ctx, `window.__noReload = true`)
		px.start() // the broker becomes reachable
		waitFor(t, ctx, "recovery shown", row+`.querySelector(".pending").textContent === "0" && `+row+`.querySelector(".state").textContent.includes("ok")`, 60*time.Second)
		if !eval[bool](t, ctx, `window.__noReload === true`) {
			t.Error("the page reloaded instead of refreshing its panel")
		}
		n := queueDepth(t, amqpURL, name)
		if n < 20 {
			t.Errorf("queue %s holds %d messages after recovery, want at least the 20 backlog events", name, n)
		}
	})

	t.Run("logout", func(t *testing.T) {
		run(t, ctx, "logout", chromedp.Navigate(in.base+"/ui/delivery"), chromedp.Click(chromedp.CSS(".logout button")))
		waitFor(t, ctx, "login page", `location.pathname === "/ui/login"`, 10*time.Second)
		run(t, ctx, "back", chromedp.Navigate(in.base+"/ui/conversations"))
		waitFor(t, ctx, "login again", `location.pathname === "/ui/login"`, 10*time.Second)
	})

	t.Run("a client sees its own consumers only", func(t *testing.T) {
		run(t, ctx, "client login", chromedp.Navigate(in.base+"/ui/login"),
			chromedp.SendKeys(chromedp.CSS("#client_id"), "analytics"), chromedp.SendKeys(chromedp.CSS("#client_secret"), "analytics-secret"),
			chromedp.Click(chromedp.CSS("#login")))
		waitFor(t, ctx, "consumers page", `location.pathname === "/ui/consumers" && !!document.querySelector('section[data-group="ui-group"]')`, 10*time.Second)
		if eval[bool](t, ctx, `!!document.querySelector('section[data-group="crm-group"]') || document.body.innerText.includes("crm-1")`) {
			t.Error("analytics sees crm's consumer")
		}
		if eval[bool](t, ctx, `!!document.querySelector('nav a[href="/ui/conversations"]')`) {
			t.Error("a client is offered the conversations page")
		}
		run(t, ctx, "conversations as a client", chromedp.Navigate(in.base+"/ui/conversations"))
		waitFor(t, ctx, "refused", `document.title.startsWith("Forbidden") && !document.querySelector("#conversations")`, 10*time.Second)
	})
}

func queueDepth(t *testing.T, amqpURL, queue string) int {
	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return q.Messages
}

func deleteRabbit(t *testing.T, amqpURL, name string) {
	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return
	}
	defer ch.Close()
	_, _ = ch.QueueDelete(name, false, false, false)
	_ = ch.ExchangeDelete(name, false, false)
}
