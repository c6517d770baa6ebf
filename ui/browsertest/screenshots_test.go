package browsertest

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestScreenshots saves a PNG of each page in $PARLEY_SCREENSHOTS (`make
// screenshots` sets it to docs/img). It needs no services: the RabbitMQ
// broker points at a closed port, so the delivery page has a backlog to
// show.
func TestScreenshots(t *testing.T) {
	dir := os.Getenv("PARLEY_SCREENSHOTS")
	if dir == "" {
		t.Skip("PARLEY_SCREENSHOTS not set; `make screenshots` sets it")
	}
	ctx := browser(t)
	closed := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	in := startParley(t, endpointsFor(closed, "guest", "guest", "screenshots"))

	t0 := float64(time.Now().Unix()) - 300
	in.appendEvents("+49-170-5550123",
		action(t0, "action_session_start"),
		ev{"event": "session_started", "timestamp": t0 + 0.1},
		action(t0+0.2, "action_listen"),
		user(t0+3, "Hi! I'd like to book a table for four in Berlin tomorrow", "book_table", 0.97,
			ev{"entity": "city", "value": "Berlin"}, ev{"entity": "party_size", "value": "4"}, ev{"entity": "date", "value": "tomorrow"}),
		slot(t0+3.1, "city", "Berlin"),
		slot(t0+3.2, "party_size", 4),
		action(t0+3.3, "utter_ask_time"),
		bot(t0+3.4, "Sure! At what time?"),
		action(t0+3.5, "action_listen"),
		user(t0+20, "8pm", "inform", 0.91, ev{"entity": "time", "value": "20:00"}),
		slot(t0+20.1, "time", "20:00"),
		action(t0+20.2, "action_book_table"),
		bot(t0+20.3, "Done: a table for 4 in Berlin tomorrow at 8pm. Confirmation BX-2291."),
	)
	for i, name := range []string{"web-7f3a9c", "whatsapp-31612345678", "slack-U04ABCDEF", "web-0b2e11"} {
		ts := t0 + 40 + float64(i)*7
		in.appendEvents(name, user(ts, "what are your opening hours?", "ask_hours", 0.88-float64(i)/20), bot(ts+0.4, "We are open 11:00–23:00 every day."))
	}
	h := []string{"consumer-group", "analytics", "consumer-name", "dashboard-1"}
	in.do("POST", "/consumers", `{"auto.offset.reset": "earliest", "auto.commit.enable": "false"}`, http.StatusNoContent, h...)
	in.do("POST", "/consumers/subscription", `{"topics": ["rasa_core_events"]}`, http.StatusNoContent, h...)
	in.do("GET", "/consumers/records?timeout=5000&max_records=10", nil, http.StatusOK, h...)
	in.do("POST", "/consumers/offsets", `{"offsets": [{"topic": "rasa_core_events", "partition": 0, "offset": 8}]}`, http.StatusOK, h...)

	// Traffic for the rate chart (sampled every 5s).
	for i := range 6 {
		var evs []ev
		for j := range 2 + i%3*3 {
			evs = append(evs, ev{"sender_id": "load-" + strconv.Itoa(j%3), "event": "user", "timestamp": float64(time.Now().Unix()), "text": "load " + strconv.Itoa(j)})
		}
		in.do("POST", "/events", evs, http.StatusAccepted)
		time.Sleep(5 * time.Second) // spread over the chart's samples; not waiting for state
	}

	shots := []struct{ name, path, ready string }{
		{"conversations", "/ui/conversations", `document.querySelectorAll("#conversations a.conv").length >= 5`},
		{"transcript", "/ui/conversation?id=%2B49-170-5550123", `!!document.querySelector("#transcript .turn.bot")`},
		{"live", "/ui/live", `document.querySelectorAll("#live-rows tr").length > 5`},
		{"delivery", "/ui/delivery", `!!document.querySelector(".chart polyline")`},
		{"consumers", "/ui/consumers", `!!document.querySelector("td.lag")`},
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range shots {
		run(t, ctx, "open "+s.name, chromedp.Navigate(in.base+s.path))
		waitFor(t, ctx, s.name, s.ready, 30*time.Second)
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "ui-"+s.name+".png")
		if err := os.WriteFile(out, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", out, len(png))
	}
}
