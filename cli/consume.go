package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/parleyhq/parley/broker"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/consumer"
	"github.com/parleyhq/parley/consumer/auth"
)

func init() {
	extraCommands = append(extraCommands, newConsumeCmd)
	sectionCheckers = append(sectionCheckers, checkConsumerAPI)
}

// checkConsumerAPI validates consumer_api for `parley config check`.
func checkConsumerAPI(ep *config.Endpoints) ([]string, error) {
	c, err := consumer.ParseConfig(ep.Section("consumer_api"))
	if err != nil {
		return nil, err
	}
	brokerType := ""
	if len(ep.EventBrokers) > 0 {
		brokerType = ep.EventBrokers[0].Type()
	}
	var notes []string
	switch src := c.SourceFor(brokerType); {
	case src == "":
		notes = append(notes, fmt.Sprintf("consumer API: off (the first event broker is %q; set consumer_api.source to kafka or sql)", brokerType))
	case len(c.Clients) == 0:
		notes = append(notes, "consumer API: reads "+src+", open to loopback callers only (no consumer_api.clients)")
	default:
		notes = append(notes, fmt.Sprintf("consumer API: reads %s, %s with tokens", src, plural(len(c.Clients), "client")))
		if len(c.SigningKey) == 0 {
			notes = append(notes, "consumer API: no signing_key: tokens will not survive a restart")
		}
	}
	return append(notes, c.Warnings...), nil
}

type consumeFlags struct {
	url, group, name, topic, from string
	token, clientID, clientSecret string
	scope                         string
	count                         int
	follow, records, noCommit     bool
	wait                          time.Duration
}

func newConsumeCmd(g *globalFlags) *cobra.Command {
	f := &consumeFlags{}
	cmd := &cobra.Command{
		Use:   "consume",
		Short: "Read events from a parley server's consumer API and print them as NDJSON",
		Long: `Consume reads events through the REST consumer API of a running parley
(parley serve), as kcat -C reads a Kafka topic, and prints each event's JSON
on its own line (Rasa's bytes, so the output can be fed to parley publish).

It creates a consumer instance in --group, subscribes it to the topic, prints
the records and commits them, and deletes the instance on exit. The group
keeps its committed offsets: running again with the same --group continues
where the last run stopped; --from applies only to a group with no commit.

Without --follow it stops when no more records come; with --follow it keeps
reading new events over Server-Sent Events, reconnecting (without loss or
duplicates) when the connection drops.

A server with consumer_api.clients needs a token: --token, or --client-id and
--client-secret (or PARLEY_CLIENT_SECRET) to get one.`,
		Example: `  parley consume --from earliest --count 10
  parley consume --follow --group analytics > events.ndjson
  parley consume --url https://parley.example --client-id crm --follow
  parley consume hash-secret    # hash a client secret for endpoints.yml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger(slog.LevelWarn)
			if err != nil {
				return err
			}
			return runConsume(cmd.Context(), f, cmd.OutOrStdout(), log)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.url, "url", "http://localhost:5005", "parley server URL")
	fl.StringVar(&f.group, "group", "parley-consume", "consumer group (its committed offsets are where reading resumes)")
	fl.StringVar(&f.name, "name", "", "consumer instance name (default consumer-<random UUID>)")
	fl.StringVar(&f.topic, "topic", "", "topic to read (default: the token's, else the server's default topic)")
	fl.StringVar(&f.from, "from", "earliest", "where a group with no committed offset starts: earliest or latest")
	fl.StringVar(&f.token, "token", os.Getenv("PARLEY_CONSUMER_TOKEN"), "access token (env PARLEY_CONSUMER_TOKEN)")
	fl.StringVar(&f.clientID, "client-id", "", "client ID to get a token with")
	fl.StringVar(&f.clientSecret, "client-secret", "", "client secret (default env PARLEY_CLIENT_SECRET)")
	fl.StringVar(&f.scope, "scope", "", "topics to ask the token for, space-separated (default all the client may read)")
	fl.IntVarP(&f.count, "count", "c", 0, "stop after this many events (0: no limit)")
	fl.BoolVarP(&f.follow, "follow", "f", false, "keep reading new events (Server-Sent Events) until interrupted")
	fl.BoolVar(&f.records, "records", false, "print whole records (topic, key, partition, offset, timestamp, value) instead of the events")
	fl.BoolVar(&f.noCommit, "no-commit", false, "do not commit: leave the group's offsets where they are")
	fl.DurationVar(&f.wait, "wait", 2*time.Second, "without --follow: stop when no event arrives for this long")
	cmd.AddCommand(newHashSecretCmd())
	return cmd
}

func newHashSecretCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "hash-secret [SECRET|-]",
		Short: "Hash a client secret for consumer_api.clients[].client_secret_hash",
		Long: `Hash-secret prints the PBKDF2-SHA256 hash of a client secret, to put in
endpoints.yml as client_secret_hash. The secret is read from the argument,
from stdin ("-" or when stdin is not a terminal), or typed at a prompt
without echo.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			secret, err := readSecret(cmd, args)
			if err != nil {
				return err
			}
			h, err := auth.HashSecret(secret)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), h)
			return nil
		},
	}
}

func readSecret(cmd *cobra.Command, args []string) (string, error) {
	if len(args) == 1 && args[0] != "-" {
		return args[0], nil
	}
	in := cmd.InOrStdin()
	if f, ok := in.(*os.File); ok && len(args) == 0 && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(cmd.ErrOrStderr(), "client secret: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", err
		}
		return string(b), nil
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	secret := strings.TrimRight(line, "\r\n")
	if secret == "" {
		return "", errors.New("no secret given")
	}
	return secret, nil
}

// consumeClient talks to the consumer API.
type consumeClient struct {
	f     *consumeFlags
	base  string
	http  *http.Client // for calls; streams use their own
	token string
	log   *slog.Logger
}

// apiError is an error answer of the API.
type apiError struct {
	Status     int
	Code       int    `json:"error_code"`
	Message    string `json:"message"`
	RetryAfter time.Duration
}

func (e *apiError) Error() string {
	if e.Code == 0 {
		return fmt.Sprintf("consumer API: HTTP %d", e.Status)
	}
	return fmt.Sprintf("consumer API: %s (error %d)", e.Message, e.Code)
}

// Rate-limited calls are retried after the server's Retry-After, a few
// times, waiting at most maxRetryAfter each.
const (
	rateLimitRetries = 5
	maxRetryAfter    = 30 * time.Second
)

// retryAfter reads Retry-After (seconds), 1s when absent.
func retryAfter(h http.Header) time.Duration {
	secs, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || secs < 1 {
		return time.Second
	}
	return min(time.Duration(secs)*time.Second, maxRetryAfter)
}

func (c *consumeClient) do(ctx context.Context, method, path string, body, out any) error {
	var payload []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		payload = b
	}
	for attempt := 0; ; attempt++ {
		err := c.doOnce(ctx, method, path, payload, out)
		var ae *apiError
		if !errors.As(err, &ae) || ae.Status != http.StatusTooManyRequests || attempt >= rateLimitRetries {
			return err
		}
		c.log.Info("rate limited; retrying", "path", path, "after", ae.RetryAfter)
		if !broker.Sleep(ctx, ae.RetryAfter) {
			return err
		}
	}
}

func (c *consumeClient) doOnce(ctx context.Context, method, path string, payload []byte, out any) error {
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	c.headers(req)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		e := &apiError{Status: resp.StatusCode, RetryAfter: retryAfter(resp.Header)}
		_ = json.Unmarshal(data, e)
		return e
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

func (c *consumeClient) headers(req *http.Request) {
	req.Header.Set("consumer-group", c.f.group)
	req.Header.Set("consumer-name", c.f.name)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
}

// getToken trades the client credentials for a token.
func (c *consumeClient) getToken(ctx context.Context) error {
	form := url.Values{"grant_type": {"client_credentials"}}
	if c.f.scope != "" {
		form.Set("scope", c.f.scope)
	}
	req, err := http.NewRequestWithContext(ctx, "POST", c.base+"/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.f.clientID), url.QueryEscape(c.f.clientSecret))
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
		Description string `json:"error_description"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
		return fmt.Errorf("token request: HTTP %d", resp.StatusCode)
	}
	if resp.StatusCode != 200 || tr.AccessToken == "" {
		return fmt.Errorf("token request: %s", tr.Description)
	}
	c.token = tr.AccessToken
	return nil
}

// record is the part of a record consume prints.
type record struct {
	Partition int32           `json:"partition"`
	Offset    int64           `json:"offset"`
	Value     json.RawMessage `json:"value"`
}

// printer writes records and remembers what it wrote, for commits.
type printer struct {
	w       *bufio.Writer
	records bool
	printed int
	last    map[int32]int64 // per partition, the offset of the last record printed
	dirty   bool
}

// print writes a record's value, or with --records the record.
func (p *printer) print(raw []byte) error {
	var r record
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("bad record from the server: %w", err)
	}
	line := []byte(r.Value)
	if p.records {
		line = raw
	}
	return p.emit(line, r.Partition, r.Offset)
}

// emit writes one line and remembers the position it came from.
func (p *printer) emit(line []byte, partition int32, offset int64) error {
	if bytes.ContainsAny(line, "\r\n") {
		var buf bytes.Buffer
		if err := json.Compact(&buf, line); err == nil {
			line = buf.Bytes()
		}
	}
	p.w.Write(line)
	if err := p.w.WriteByte('\n'); err != nil {
		return err
	}
	p.printed++
	p.last[partition] = offset
	p.dirty = true
	return nil
}

func runConsume(ctx context.Context, f *consumeFlags, stdout io.Writer, log *slog.Logger) error {
	if f.from != "earliest" && f.from != "latest" {
		return fmt.Errorf("--from %q: want earliest or latest", f.from)
	}
	if f.name == "" {
		f.name = "consumer-" + uuid.NewString()
	}
	if f.clientSecret == "" {
		f.clientSecret = os.Getenv("PARLEY_CLIENT_SECRET")
	}
	c := &consumeClient{f: f, base: strings.TrimRight(f.url, "/"), http: &http.Client{Timeout: 2*f.wait + 30*time.Second}, token: f.token, log: log}
	if c.token == "" && f.clientID != "" {
		if f.clientSecret == "" {
			return errors.New("--client-id needs --client-secret or PARLEY_CLIENT_SECRET")
		}
		if err := c.getToken(ctx); err != nil {
			return err
		}
	}
	if f.topic == "" {
		var parts struct {
			Topic string `json:"topic"`
		}
		if err := c.do(ctx, "GET", "/partitions", nil, &parts); err != nil {
			return err
		}
		f.topic = parts.Topic
	}
	if err := c.do(ctx, "POST", "/consumers", map[string]string{"auto.offset.reset": f.from, "auto.commit.enable": "false"}, nil); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Code == consumer.CodeConsumerExists {
			return fmt.Errorf("consumer %s exists in group %s: choose another --name", f.name, f.group)
		}
		return err
	}
	p := &printer{w: bufio.NewWriter(stdout), records: f.records, last: map[int32]int64{}}
	defer func() {
		// Commit and delete the instance on every way out, Ctrl-C too (the
		// command's context ends on SIGINT and SIGTERM): a left-over
		// instance would hold its partitions until it expires.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		p.w.Flush()
		if err := c.commit(cctx, p); err != nil {
			log.Warn("commit on exit", "err", err)
		}
		if err := c.do(cctx, "DELETE", "/consumers", nil, nil); err != nil {
			log.Warn("deleting the consumer instance", "err", err)
		}
	}()
	if err := c.do(ctx, "POST", "/consumers/subscription", map[string]any{"topics": []string{f.topic}}, nil); err != nil {
		return err
	}
	var err error
	if f.follow {
		err = c.follow(ctx, p)
	} else {
		err = c.drain(ctx, p)
	}
	if ctx.Err() != nil {
		return nil // interrupted: a normal way to stop
	}
	return err
}

// commit commits what was printed.
func (c *consumeClient) commit(ctx context.Context, p *printer) error {
	if c.f.noCommit || !p.dirty {
		return nil
	}
	parts := make([]int32, 0, len(p.last))
	for part := range p.last {
		parts = append(parts, part)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	offs := make([]map[string]any, len(parts))
	for i, part := range parts {
		offs[i] = map[string]any{"topic": c.f.topic, "partition": part, "offset": p.last[part]}
	}
	if err := c.do(ctx, "POST", "/consumers/offsets", map[string]any{"offsets": offs}, nil); err != nil {
		return err
	}
	p.dirty = false
	return nil
}

func (p *printer) done(count int) bool { return count > 0 && p.printed >= count }

// drain reads until no record comes for --wait, once the consumer holds
// partitions (a group still joining has none yet).
func (c *consumeClient) drain(ctx context.Context, p *printer) error {
	assigned := false
	deadline := time.Now().Add(c.f.wait + 10*time.Second)
	for !assigned {
		var a struct {
			Partitions []json.RawMessage `json:"partitions"`
		}
		if err := c.do(ctx, "GET", "/consumers/assignments", nil, &a); err != nil {
			return err
		}
		if assigned = len(a.Partitions) > 0; !assigned {
			if time.Now().After(deadline) {
				return fmt.Errorf("no partition of %s was assigned to this consumer: other members of group %s hold them", c.f.topic, c.f.group)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	for !p.done(c.f.count) {
		var recs []json.RawMessage
		path := "/consumers/records?timeout=" + strconv.FormatInt(c.f.wait.Milliseconds(), 10)
		if err := c.do(ctx, "GET", path, nil, &recs); err != nil {
			return err
		}
		if len(recs) == 0 {
			return nil
		}
		for _, raw := range recs {
			if p.done(c.f.count) {
				break
			}
			if err := p.print(raw); err != nil {
				return err
			}
		}
		if err := p.w.Flush(); err != nil {
			return err
		}
		if err := c.commit(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// follow reads the SSE stream, reconnecting after the last event seen.
func (c *consumeClient) follow(ctx context.Context, p *printer) error {
	lastID := ""
	bo := broker.Backoff{Initial: 500 * time.Millisecond, Max: 10 * time.Second}
	attempt := 0
	for {
		before := lastID
		err := c.stream(ctx, p, &lastID)
		if err == nil || ctx.Err() != nil || p.done(c.f.count) {
			return nil
		}
		var ae *apiError
		switch {
		case errors.As(err, &ae) && ae.Code == consumer.CodeUnauthorized && c.f.clientID != "":
			if err := c.getToken(ctx); err != nil {
				return err
			}
		case errors.As(err, &ae) && ae.Code != consumer.CodeUnavailable && ae.Code != consumer.CodeRateLimited && ae.Status < 500:
			return err
		default:
			c.log.Warn("stream interrupted; reconnecting", "err", err, "after", lastID)
		}
		if lastID != before {
			attempt = 0 // the stream delivered: a new outage starts over
		}
		attempt++
		delay := bo.Delay(attempt)
		if errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests {
			delay = max(delay, ae.RetryAfter)
		}
		if !broker.Sleep(ctx, delay) {
			return nil
		}
	}
}

// stream reads one SSE connection; it returns nil when --count is reached.
// Without --records it asks for the values alone (?data=value): nothing
// to parse, the position comes with each event's id.
func (c *consumeClient) stream(ctx context.Context, p *printer, lastID *string) error {
	url := c.base + "/consumers/records/stream"
	if !p.records {
		url += "?data=value"
	}
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	c.headers(req)
	req.Header.Set("Accept", "text/event-stream")
	if *lastID != "" {
		req.Header.Set("Last-Event-ID", *lastID)
	}
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		e := &apiError{Status: resp.StatusCode, RetryAfter: retryAfter(resp.Header)}
		_ = json.NewDecoder(resp.Body).Decode(e)
		return e
	}
	rd := bufio.NewReaderSize(resp.Body, 64<<10)
	var id, typ string
	var data []byte
	lastCommit := time.Now()
	for {
		raw, err := rd.ReadBytes('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		line := bytes.TrimRight(raw, "\r\n")
		switch {
		case len(line) == 0:
			if typ == "error" {
				e := &apiError{Status: 200}
				_ = json.Unmarshal(data, e)
				return e
			}
			if typ == "record" {
				if err := c.printEvent(p, id, data); err != nil {
					return err
				}
				*lastID = id
				if p.done(c.f.count) {
					return nil
				}
			}
			id, typ, data = "", "", data[:0]
			// Flush when no more events are buffered, commit at most
			// once a second.
			if rd.Buffered() == 0 {
				if err := p.w.Flush(); err != nil {
					return err
				}
				if time.Since(lastCommit) > time.Second {
					if err := c.commit(ctx, p); err != nil {
						c.log.Warn("commit", "err", err)
					}
					lastCommit = time.Now()
				}
			}
		case bytes.HasPrefix(line, []byte("id: ")):
			id = string(line[4:])
		case bytes.HasPrefix(line, []byte("event: ")):
			typ = string(line[7:])
		case bytes.HasPrefix(line, []byte("data: ")):
			data = append(data, line[6:]...)
		}
	}
}

// printEvent prints one record event of the stream: a record, or, without
// --records, a value whose position is its id, <partition>:<offset>.
func (c *consumeClient) printEvent(p *printer, id string, data []byte) error {
	if p.records {
		return p.print(data)
	}
	part, off, ok := consumer.ParseEventID(id)
	if !ok {
		return fmt.Errorf("bad event id %q from the server", id)
	}
	return p.emit(data, part, off)
}
