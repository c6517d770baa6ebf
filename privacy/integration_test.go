package privacy_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	_ "github.com/parleyhq/parley/broker/all"
	"github.com/parleyhq/parley/cli"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/event"
	"github.com/parleyhq/parley/internal/testenv"
	"github.com/parleyhq/parley/server"
)

const hashKey = "test-hash-key-0123456789abcdef"

func hmacHex(v string) string {
	m := hmac.New(sha256.New, []byte(hashKey))
	m.Write([]byte(v))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// seed is one PII value planted in the corpus and what an anonymized
// destination must carry instead.
type seed struct{ value, want string }

// corpus returns three conversations seeded with PII of every supported
// kind, how each is posted, and the seeds.
func corpus(run string) (oneByOne []string, turnAPI string, turnAPIID string, bulk []string, later string, seeds []seed) {
	c := func(s string) string { return s + "-" + run }
	// Conversation 1, posted event by event: the card is typed in the user
	// message before the slot event that names it.
	s1 := c("conv-one-by-one")
	oneByOne = []string{
		`{"sender_id":"` + s1 + `","event":"user","timestamp":1700000000.1,"text":"my member number is ZX-48151623, card 4000 0566 5566 5556","parse_data":{"intent":{"name":"pay","confidence":0.98},"entities":[]},"input_channel":"rest","message_id":"m1","metadata":{}}`,
		`{"sender_id":"` + s1 + `","event":"slot","timestamp":1700000000.2,"name":"membership_id","value":"ZX-48151623"}`,
		`{"sender_id":"` + s1 + `","event":"slot","timestamp":1700000000.25,"name":"credit_card_number","value":"4000 0566 5566 5556"}`,
		`{"sender_id":"` + s1 + `","event":"bot","timestamp":1700000000.3,"text":"Charged the card ending in 5556.","data":{"elements":null,"quick_replies":null,"buttons":null,"attachment":null,"image":null,"custom":null},"metadata":{}}`,
		`{"sender_id":"` + s1 + `","event":"action","timestamp":1700000000.4,"name":"action_listen","policy":null,"confidence":null,"action_text":null,"hide_rule_turn":false}`,
	}
	// Conversation 2, a whole turn through the conversation API: slots,
	// entity, free-text phone and email, the bot echoing them.
	turnAPIID = c("conv-api")
	turnAPI = `[` +
		`{"event":"user","timestamp":1700000100.1,"text":"I am Ada Lovelace, mail ada.l@analytical.example, phone +44 20 7946 0958","parse_data":{"intent":{"name":"inform","confidence":0.9},"entities":[{"entity":"person","start":5,"end":17,"value":"Ada Lovelace","extractor":"DIETClassifier"}],"text":"I am Ada Lovelace, mail ada.l@analytical.example, phone +44 20 7946 0958"},"input_channel":"rest","message_id":"m2","metadata":{"client_email":"ops@bank.example"}},` +
		`{"event":"slot","timestamp":1700000100.2,"name":"email","value":"ada.l@analytical.example"},` +
		`{"event":"slot","timestamp":1700000100.3,"name":"person_name","value":"Ada Lovelace"},` +
		`{"event":"bot","timestamp":1700000100.4,"text":"Thanks Ada Lovelace, we will write to ada.l@analytical.example.","data":{},"metadata":{}},` +
		`{"event":"action","timestamp":1700000100.5,"name":"action_listen","policy":null,"confidence":null,"action_text":null,"hide_rule_turn":false}` +
		`]`
	// Conversation 3 through POST /events in one request: an IBAN in
	// metadata, a card in free text that no slot names, entities event.
	s3 := c("conv-bulk")
	bulk = []string{
		`{"sender_id":"` + s3 + `","event":"user","timestamp":1700000200.1,"text":"refund to my IBAN please, or card 5500 0055 5555 5559","parse_data":{"intent":{"name":"refund","confidence":0.7},"entities":[]},"metadata":{"iban":"GB82 WEST 1234 5698 7654 32","call_back":"(212) 555-0147"}}`,
		`{"sender_id":"` + s3 + `","event":"entities","timestamp":1700000200.2,"entities":[{"entity":"person","value":"Grace Hopper"}]}`,
		`{"sender_id":"` + s3 + `","event":"slot","timestamp":1700000200.3,"name":"email","value":"grace@navy.example"}`,
		`{"sender_id":"` + s3 + `","event":"bot","timestamp":1700000200.4,"text":"Grace Hopper, your request is noted.","metadata":{}}`,
		`{"sender_id":"` + s3 + `","event":"action","timestamp":1700000200.5,"name":"action_listen","policy":null,"confidence":null}`,
	}
	// A later request of conversation 3 names the person without any
	// entity: only the value learned from the earlier request catches it
	// (and hashes it as it was learned, so joins still work).
	later = `{"sender_id":"` + s3 + `","event":"user","timestamp":1700000300.1,"text":"is the refund for grace hopper done?","parse_data":{"intent":{"name":"ask","confidence":0.6},"entities":[]}}`
	seeds = []seed{
		{"4000 0566 5566 5556", "#### #### #### 5556"},
		{"5500 0055 5555 5559", "#### #### #### 5559"},
		{"ada.l@analytical.example", "EMAIL"},
		{"ops@bank.example", "EMAIL"},
		{"grace@navy.example", "EMAIL"},
		{"ZX-48151623", "MEMBERSHIP_ID"},
		{"grace hopper", hmacHex("Grace Hopper")},
		{"+44 20 7946 0958", "PHONE"},
		{"(212) 555-0147", "PHONE"},
		{"GB82 WEST 1234 5698 7654 32", "**** **** **** **** **** **"},
		{"Ada Lovelace", hmacHex("Ada Lovelace")},
		{"Grace Hopper", hmacHex("Grace Hopper")},
	}
	return
}

const endpointsTemplate = `
privacy:
  hold: 1s
  rules:
    - slot: credit_card_number
      anonymization: {type: redact, redaction_char: "#", keep_right: 4}
    - recognizer: credit_card
      anonymization: {type: redact, redaction_char: "#", keep_right: 4}
    - slot: email
      anonymization: {type: mask}
    - recognizer: email
      anonymization: {type: mask}
    - slot: person_name
      anonymization: {type: hash}
    - slot: membership_id
      anonymization: {type: mask}
    - entity: person
      anonymization: {type: hash}
    - recognizer: phone
      anonymization: {type: mask}
    - recognizer: iban
tracker_store:
  type: sql
  db: rasa.db
event_broker:
  - name: analytics
    type: kafka
    url: %[1]s
    topic: %[2]s-anon
    partition_by_sender: true
  - name: warehouse
    type: kafka
    url: %[1]s
    topic: %[2]s-raw
    privacy: none
  - name: queue
    type: pika
    url: %[3]s
    queues: [%[2]s]
    exchange_name: %[2]s
  - name: table
    type: sql
    dialect: postgresql
    url: %[4]s
    table: %[5]s
  - name: log
    type: file
    path: events.log
`

// TestCorpusEveryBroker is issue 19's test: the corpus goes through parley
// serve to Kafka, RabbitMQ, PostgreSQL and a file with the rules applied,
// and to a second Kafka topic pristine; every anonymized destination (and
// the consumer API over the anonymized topic) holds exactly the pristine
// bytes with each seeded value replaced as its rule says, and nothing else
// changed; the pristine topic and the tracker store hold the originals.
func TestCorpusEveryBroker(t *testing.T) {
	seeds := testenv.Get(t, "PARLEY_KAFKA_SEEDS")
	amqpURL := testenv.Get(t, "PARLEY_AMQP_URL")
	pgDSN := testenv.Get(t, "PARLEY_POSTGRES_DSN")
	t.Setenv("PARLEY_PRIVACY_HASH_KEY", hashKey)
	run := fmt.Sprintf("%d", time.Now().UnixNano())
	name := "privacy_" + run
	table := "privacy_events_" + run
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	admin, err := kgo.NewClient(kgo.SeedBrokers(seeds))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := kadm.NewClient(admin).CreateTopics(ctx, 3, 1, nil, name+"-anon", name+"-raw"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t.Chdir(dir)
	yml := fmt.Sprintf(endpointsTemplate, seeds, name, amqpURL, pgDSN, table)
	if err := os.WriteFile("endpoints.yml", []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	ep, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	g, err := server.NewGateway(ctx, ep, server.GatewayOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			g.Close(context.Background())
		}
	}()
	h := g.Server.Handler()
	post := func(path, body string) {
		t.Helper()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", path, strings.NewReader(body)))
		if w.Code/100 != 2 {
			t.Fatalf("POST %s: %d %s", path, w.Code, w.Body)
		}
	}
	waitDelivered := func() {
		t.Helper()
		for {
			pending := uint64(0)
			for _, b := range g.Spool.Status().Brokers {
				pending += b.Pending
			}
			if pending == 0 {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("spool not drained: %+v", g.Spool.Status().Brokers)
			}
			time.Sleep(20 * time.Millisecond) // polling with a deadline
		}
	}

	oneByOne, turn, turnID, bulk, later, seedList := corpus(run)
	// A producer posting a turn event by event, 50ms apart as an action
	// server call would space them (pacing the producer, not waiting for
	// state): the hold gathers the turn into one batch.
	pace := time.NewTicker(50 * time.Millisecond)
	for _, l := range oneByOne {
		post("/events", l)
		<-pace.C
	}
	pace.Stop()
	waitDelivered()
	post("/conversations/"+turnID+"/tracker/events", turn)
	post("/events", strings.Join(bulk, "\n"))
	waitDelivered()
	post("/events", later)
	waitDelivered()
	// The turn's 5 events follow the 3 of the session start that the
	// conversation API adds to a new conversation, as Rasa does.
	total := len(oneByOne) + 3 + 5 + len(bulk) + 1

	// The consumer API over the anonymized topic, through parley consume.
	viaAPI := consume(ctx, t, h, run, total)
	if err := g.Close(ctx); err != nil {
		t.Fatal(err)
	}
	closed = true
	// And over the anonymized SQL table: the same file with the consumer
	// API's source set to sql (everything is delivered: nothing is sent again).
	if err := os.WriteFile("endpoints.yml", []byte(yml+"consumer_api:\n  source: sql\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ep2, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	g2, err := server.NewGateway(ctx, ep2, server.GatewayOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	viaSQLAPI := consume(ctx, t, g2.Server.Handler(), run+"-sql", total)
	if err := g2.Close(ctx); err != nil {
		t.Fatal(err)
	}

	pristine := readKafka(ctx, t, seeds, name+"-raw", total)
	if len(pristine) != total {
		t.Fatalf("pristine topic holds %d events, want %d", len(pristine), total)
	}
	// The pristine topic holds every seeded value as it was.
	all := bytes.Join(pristine, nil)
	for _, s := range seedList {
		if !bytes.Contains(all, []byte(s.value)) {
			t.Errorf("pristine topic lacks %q", s.value)
		}
	}
	pairs := []string{}
	for _, s := range seedList {
		pairs = append(pairs, s.value, s.want)
	}
	rep := strings.NewReplacer(pairs...)
	var want []string
	for _, p := range pristine {
		want = append(want, rep.Replace(string(p)))
	}
	sort.Strings(want)

	dests := map[string][][]byte{
		"kafka":                readKafka(ctx, t, seeds, name+"-anon", total),
		"consumer API (kafka)": viaAPI,
		"consumer API (sql)":   viaSQLAPI,
		"rabbitmq":             readQueue(t, amqpURL, name),
		"postgresql":           readTable(t, pgDSN, table),
		"file":                 lines(mustRead(t, filepath.Join(dir, "events.log"))),
	}
	for dest, got := range dests {
		joined := bytes.Join(got, []byte("\n"))
		for _, s := range seedList {
			if bytes.Contains(joined, []byte(s.value)) || bytes.Contains(bytes.ToLower(joined), []byte(strings.ToLower(s.value))) {
				t.Errorf("%s: seeded value %q is there", dest, s.value)
			}
		}
		gs := make([]string, len(got))
		for i, g := range got {
			gs[i] = string(g)
		}
		sort.Strings(gs)
		if strings.Join(gs, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: %d events differ from the pristine bytes with only the seeds replaced:\n got %s\nwant %s", dest, len(gs), strings.Join(gs, "\n"), strings.Join(want, "\n"))
		}
	}

	// The tracker store keeps the pristine events and the learned values.
	db, err := sql.Open("sqlite", filepath.Join(dir, "rasa.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM events WHERE sender_id = ? AND data LIKE '%Ada Lovelace%ada.l@analytical.example%'", turnID).Scan(&n); err != nil || n == 0 {
		t.Errorf("tracker store: %d pristine user events of %s (err %v)", n, turnID, err)
	}
	if err := db.QueryRow("SELECT count(*) FROM parley_privacy_values").Scan(&n); err != nil || n < 5 {
		t.Errorf("learned values table holds %d rows (err %v), want the corpus' slot and entity values", n, err)
	}
}

// consume reads n events through the consumer API of h with parley consume.
func consume(ctx context.Context, t *testing.T, h http.Handler, group string, n int) [][]byte {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	var out bytes.Buffer
	root := cli.New()
	root.SetOut(&out)
	root.SetArgs([]string{"consume", "--url", srv.URL, "--group", "g-" + group, "--from", "earliest", "--count", fmt.Sprint(n), "--wait", "5s"})
	if err := root.ExecuteContext(ctx); err != nil {
		t.Fatalf("parley consume: %v", err)
	}
	return lines(out.Bytes())
}

func lines(b []byte) [][]byte {
	var out [][]byte
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if len(l) > 0 {
			out = append(out, l)
		}
	}
	return out
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readKafka(ctx context.Context, t *testing.T, seeds, topic string, n int) [][]byte {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out [][]byte
	for len(out) < n && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { out = append(out, r.Value) })
	}
	return out
}

func readQueue(t *testing.T, url, queue string) [][]byte {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.QueueDelete(queue, false, false, false)
	var out [][]byte
	for {
		d, ok, err := ch.Get(queue, true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		out = append(out, d.Body)
	}
}

func readTable(t *testing.T, dsn, table string) [][]byte {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	defer db.Exec("DROP TABLE " + table)
	rows, err := db.Query("SELECT data FROM " + table + " ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			t.Fatal(err)
		}
		out = append(out, []byte(d))
	}
	return out
}

var _ = event.Parse
