package faulttest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// proxy is a TCP proxy between parley and a service that a test can cut:
// every connection is reset at once and new ones are refused until
// restore. Armed, it cuts right after forwarding a commit (a PostgreSQL
// COMMIT, a Kafka EndTxn), so the service commits and parley never hears
// of it: the commit's outcome is unknown to parley.
type proxy struct {
	t      *testing.T
	ln     net.Listener
	target string
	kafka  bool // frames are Kafka's: find EndTxn, rewrite broker addresses

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	down  bool
	armed bool
	// holding: a commit went to the service while armed; answers are
	// dropped until the cut, so the service commits and parley never hears.
	holding bool
	cuts    int
	cutCh   chan struct{} // closed at the next cut
}

func newProxy(t *testing.T, target string, kafka bool) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, ln: ln, target: target, kafka: kafka, conns: map[net.Conn]struct{}{}, cutCh: make(chan struct{})}
	go p.accept()
	t.Cleanup(func() { ln.Close(); p.cut() })
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			reset(c)
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			reset(c)
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[s] = struct{}{}, struct{}{}
		p.mu.Unlock()
		if p.kafka {
			corr := &correlations{m: map[int32][2]int16{}}
			go p.pipeKafkaRequests(c, s, corr)
			go p.pipeKafkaResponses(s, c, corr)
		} else {
			go p.pipeSQL(c, s)
			go p.pipe(s, c)
		}
	}
}

// reset closes c with a TCP RST, as a cut cable seen by a firewall does.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

// cut resets every connection and refuses new ones until restore.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down, p.armed, p.holding = true, false, false
	for c := range p.conns {
		reset(c)
	}
	p.conns = map[net.Conn]struct{}{}
	p.cuts++
	close(p.cutCh)
	p.cutCh = make(chan struct{})
}

func (p *proxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// cutAtNextCommit arms the proxy and waits for the cut (or cuts anyway
// after d, if no commit went through meanwhile). It reports whether the
// cut came at a commit.
func (p *proxy) cutAtNextCommit(d time.Duration) bool {
	p.mu.Lock()
	p.armed = true
	ch := p.cutCh
	p.mu.Unlock()
	select {
	case <-ch:
		return true
	case <-time.After(d):
		p.cut()
		return false
	}
}

// forwarded is told that b went to the service; if it held a commit and
// the proxy is armed, everything is cut before any answer comes back.
func (p *proxy) forwarded(commit bool) {
	if !commit {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.armed && !p.holding {
		p.holding = true
		time.AfterFunc(200*time.Millisecond, p.cut) // time for the service to commit
	}
}

func (p *proxy) isHolding() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.holding
}

// pipe copies answers to parley, dropping the connection instead while
// holding.
func (p *proxy) pipe(from, to net.Conn) {
	defer func() { reset(from); reset(to) }()
	buf := make([]byte, 64<<10)
	for {
		n, err := from.Read(buf)
		if n > 0 {
			if p.isHolding() {
				return
			}
			if _, werr := to.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *proxy) pipeSQL(from, to net.Conn) {
	defer func() { reset(from); reset(to) }()
	buf := make([]byte, 64<<10)
	for {
		n, err := from.Read(buf)
		if n > 0 {
			if _, werr := to.Write(buf[:n]); werr != nil {
				return
			}
			p.forwarded(bytes.Contains(bytes.ToLower(buf[:n]), []byte("commit")))
		}
		if err != nil {
			return
		}
	}
}

// correlations maps a connection's Kafka correlation ids to the request's
// key and version, to decode the responses.
type correlations struct {
	mu sync.Mutex
	m  map[int32][2]int16
}

func readFrame(r *bufio.Reader) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return body, nil
}

func writeFrame(w io.Writer, body []byte) error {
	out := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(body)), uint32(len(body)))
	_, err := w.Write(append(out, body...))
	return err
}

func (p *proxy) pipeKafkaRequests(from, to net.Conn, corr *correlations) {
	defer func() { reset(from); reset(to) }()
	r := bufio.NewReader(from)
	for {
		body, err := readFrame(r)
		if err != nil || len(body) < 8 {
			return
		}
		key, version := int16(binary.BigEndian.Uint16(body)), int16(binary.BigEndian.Uint16(body[2:]))
		corr.mu.Lock()
		corr.m[int32(binary.BigEndian.Uint32(body[4:]))] = [2]int16{key, version}
		corr.mu.Unlock()
		if err := writeFrame(to, body); err != nil {
			return
		}
		p.forwarded(key == int16(kmsg.EndTxn))
	}
}

// pipeKafkaResponses rewrites the broker addresses of Metadata and
// FindCoordinator responses to the proxy's, so that the client keeps
// going through it.
func (p *proxy) pipeKafkaResponses(from, to net.Conn, corr *correlations) {
	defer func() { reset(from); reset(to) }()
	host, portStr, _ := net.SplitHostPort(p.addr())
	port, _ := strconv.Atoi(portStr)
	r := bufio.NewReader(from)
	for {
		body, err := readFrame(r)
		if err != nil || len(body) < 4 {
			return
		}
		corr.mu.Lock()
		kv, ok := corr.m[int32(binary.BigEndian.Uint32(body))]
		delete(corr.m, int32(binary.BigEndian.Uint32(body)))
		corr.mu.Unlock()
		if p.isHolding() {
			return
		}
		if ok && (kv[0] == int16(kmsg.Metadata) || kv[0] == int16(kmsg.FindCoordinator)) {
			body = rewriteAddrs(body, kv[0], kv[1], host, int32(port))
		}
		if err := writeFrame(to, body); err != nil {
			return
		}
	}
}

func rewriteAddrs(body []byte, key, version int16, host string, port int32) []byte {
	resp := kmsg.ResponseForKey(key)
	resp.SetVersion(version)
	hdr := 4
	if resp.IsFlexible() {
		hdr++ // the header's tagged fields: none from Kafka
	}
	if len(body) < hdr || resp.ReadFrom(body[hdr:]) != nil {
		return body
	}
	switch r := resp.(type) {
	case *kmsg.MetadataResponse:
		for i := range r.Brokers {
			r.Brokers[i].Host, r.Brokers[i].Port = host, port
		}
	case *kmsg.FindCoordinatorResponse:
		if r.Host != "" {
			r.Host, r.Port = host, port
		}
		for i := range r.Coordinators {
			r.Coordinators[i].Host, r.Coordinators[i].Port = host, port
		}
	}
	return resp.AppendTo(append([]byte(nil), body[:hdr]...))
}
