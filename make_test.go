// Tests of the repository's own tooling (the Makefile), which no package
// owns.
package parley_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestMakeFuzzRunsEveryTarget: make fuzz runs every Fuzz function of the
// repository (it ran 2 of 6), found the way the Go toolchain finds them
// (issue 14).
func TestMakeFuzzRunsEveryTarget(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not installed")
	}
	out, err := exec.Command("make", "-s", "fuzz-list").Output()
	if err != nil {
		t.Fatalf("make fuzz-list: %v", err)
	}
	got := strings.Split(strings.TrimSpace(string(out)), "\n")
	var want []string
	err = filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			if name := funcName(decl); strings.HasPrefix(name, "Fuzz") {
				want = append(want, "./"+filepath.Dir(path)+" "+name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) || len(want) < 6 {
		t.Fatalf("make fuzz-list:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestMakeTestSaysWhatItDoes: make test prints a line before the race
// build, which takes minutes on a cold machine with no other output.
func TestMakeTestSaysWhatItDoes(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not installed")
	}
	out, err := exec.Command("make", "-n", "test").Output()
	if err != nil {
		t.Fatalf("make -n test: %v", err)
	}
	lines := strings.Split(string(out), "\n")
	race := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, "test -race") && !strings.HasPrefix(l, "echo") })
	if race < 1 || !strings.HasPrefix(lines[race-1], "echo ") || !strings.Contains(lines[race-1], "race detector") {
		t.Fatalf("make test does not announce the race build:\n%s", out)
	}
}

// funcName returns the name of a top-level function (not a method), or "".
func funcName(d ast.Decl) string {
	if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil {
		return fd.Name.Name
	}
	return ""
}
