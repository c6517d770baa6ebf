package faulttest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// parleyBinary builds cmd/parley once per test run.
func parleyBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "parley-fault-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "parley")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/parleyhq/parley/cmd/parley").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// parley is a `parley serve` process in its own working directory, which
// holds endpoints.yml and the spool, so a restart resumes where it was.
type parley struct {
	t    *testing.T
	dir  string
	addr string
	mu   sync.Mutex
	cmd  *exec.Cmd
	logs *bytes.Buffer
	done chan struct{}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func newParley(t *testing.T, endpoints string) *parley {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "endpoints.yml"), []byte(endpoints), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &parley{t: t, dir: dir, addr: freeAddr(t), logs: &bytes.Buffer{}}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("parley logs:\n%s", p.logTail(100))
		}
	})
	return p
}

func (p *parley) url() string { return "http://" + p.addr }

// start launches the process and waits until /health answers. It may
// run on a load hook's goroutine, so it returns its error.
func (p *parley) start() error {
	p.mu.Lock()
	cmd := exec.Command(parleyBinary(p.t), "serve", "--addr", p.addr, "--log-level", "info")
	cmd.Dir = p.dir
	cmd.Stdout, cmd.Stderr = &lockedWriter{mu: &p.mu, w: p.logs}, &lockedWriter{mu: &p.mu, w: p.logs}
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		return err
	}
	p.cmd, p.done = cmd, make(chan struct{})
	done := p.done
	p.mu.Unlock()
	go func() { _ = cmd.Wait(); close(done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(p.url() + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		select {
		case <-done:
			return fmt.Errorf("parley exited during start-up:\n%s", p.logTail(50))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("parley not healthy after 60s:\n%s", p.logTail(50))
		}
		time.Sleep(50 * time.Millisecond) // polling a port
	}
}

// kill9 crashes parley: no shutdown, no flush.
func (p *parley) kill9() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// stop shuts parley down gracefully (SIGTERM), waiting for it to exit.
func (p *parley) stop() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

func (p *parley) logTail(lines int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.logs.Bytes()
	n := 0
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '\n' {
			n++
			if n > lines {
				return string(b[i+1:])
			}
		}
	}
	return string(b)
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// service runs scripts/services.sh with args (e.g. "kill", "kafka"). It
// may run on a load hook's goroutine, so it reports with Errorf, not Fatal.
func service(t *testing.T, args ...string) bool {
	t.Helper()
	script := os.Getenv("PARLEY_SERVICES_SCRIPT")
	if script == "" {
		script = "../scripts/services.sh"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, script, args...).CombinedOutput()
	if err != nil {
		t.Errorf("services.sh %v: %v\n%s", args, err, out)
		return false
	}
	return true
}
