// Package ui is parley's read-only web UI, served by `parley serve` at
// /ui/: conversations and their transcripts (live over Server-Sent
// Events), a tail of accepted events, delivery per broker (spool depth,
// failures, dead letters, a rate chart) and the consumer API's groups.
//
// Pages are rendered on the server with html/template, which escapes all
// user text; the little JavaScript there is (assets/ui.js) only appends
// server-rendered fragments and refreshes panels. Everything is embedded
// in the binary and served under a Content-Security-Policy that allows
// nothing but this origin's own files: no CDN, no inline script.
//
// The UI reads through small interfaces (Conversations, Delivery,
// Consumers) that the server wires to the tracker store, the spool and the
// consumer API; Live taps the publishers to see events as they are
// accepted:
//
//	live := ui.NewLive(0)
//	pub := live.Tap(spool, "events")    // give pub to the HTTP ingest
//	h, _ := ui.New(ui.Options{Conversations: ui.TrackerConversations(store), Delivery: spool, Live: live})
//	h.Register(mux)
//	defer h.Close()
package ui
